//! The fleet's bookkeeping of its sessions: the per-phase counts behind `/health/` and
//! `/metrics`, and the fleet-wide keepalive sweep that probes quiet connections.

use std::time::{Duration, Instant};

use cloudpilot::config::Settings;
use cloudpilot::fleet::{Fleet, Phase, SessionCounts};
use cloudpilot::routeros::RestRequest;
use cloudpilot::sim::{SimConfig, Simulator};
use cloudpilot::store::{Router, SealedSecret, Timestamp, Transport};

async fn fleet(keepalive_secs: &str) -> Fleet {
    let env = [
        ("CLOUDPILOT__FLEET__CONNECT_TIMEOUT_MS", "700"),
        ("CLOUDPILOT__FLEET__BACKOFF_INITIAL_MS", "50"),
        ("CLOUDPILOT__FLEET__BACKOFF_MAX_MS", "200"),
        ("CLOUDPILOT__FLEET__KEEPALIVE_SECS", keepalive_secs),
    ]
    .map(|(k, v)| (k.to_string(), v.to_string()));
    let settings = Settings::load_with_env(None, env).expect("settings");
    Fleet::start(settings.fleet).await.expect("fleet starts")
}

fn router(id: u64, host: &str, port: u16, username: &str) -> Router {
    Router {
        id,
        owner: 1,
        name: format!("r{id}"),
        host: host.to_owned(),
        port,
        username: username.to_owned(),
        password: SealedSecret {
            key_id: 1,
            nonce: [0; 12],
            ciphertext: Vec::new(),
        },
        transport: Transport::Api,
        use_https: false,
        tls: String::new(),
        tags: Vec::new(),
        created_at: Timestamp::now(),
        updated_at: Timestamp::now(),
    }
}

fn sim_router(id: u64, sim: &Simulator, index: usize) -> (Router, String) {
    let info = &sim.routers()[index];
    let r = router(id, &info.host, info.port, &info.username);
    (r, info.password.clone())
}

/// A loopback port with nothing listening.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn counts(open: usize, connecting: usize, offline: usize) -> SessionCounts {
    SessionCounts {
        open,
        connecting,
        offline,
    }
}

/// The counts the fleet reports, checked against the phase of every session it holds.
fn counted_by_walking(fleet: &Fleet, ids: &[u64]) -> SessionCounts {
    let mut c = SessionCounts::default();
    for &id in ids.iter().filter(|&&id| fleet.has_session(id)) {
        match phase_of(fleet, id) {
            Phase::Online => c.open += 1,
            Phase::Connecting => c.connecting += 1,
            Phase::Offline => c.offline += 1,
        }
    }
    c
}

fn phase_of(fleet: &Fleet, id: u64) -> Phase {
    let s = fleet.status(id);
    if s.is_online {
        Phase::Online
    } else if s.last_error.is_some() {
        Phase::Offline
    } else {
        Phase::Connecting
    }
}

/// Waits until the fleet's counts are `want`, checking on the way that they never count
/// more or fewer sessions than `total`.
async fn settle(fleet: &Fleet, total: usize, want: SessionCounts) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = fleet.counts();
        assert_eq!(
            now.open + now.connecting + now.offline,
            total,
            "sessions counted: {now:?}"
        );
        if now == want {
            return;
        }
        assert!(Instant::now() < deadline, "counts {now:?}, want {want:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn identity(fleet: &Fleet, id: u64) -> bool {
    let req = RestRequest::parse(Some("GET"), "system/identity", None, None).unwrap();
    fleet.execute(id, req, Duration::from_secs(3)).await.is_ok()
}

/// Open, reconnect after the router drops the connection, re-open (restart), and close:
/// the constant-time counts match the sessions' phases throughout and end at zero.
#[tokio::test]
async fn session_counts_stay_exact_through_open_reconnect_and_close() {
    let sim = Simulator::start(SimConfig {
        routers: 2,
        ..SimConfig::default()
    })
    .await
    .expect("simulator starts");
    let fleet = fleet("60").await;
    assert_eq!(fleet.counts(), counts(0, 0, 0));

    for (id, index) in [(1, 0), (2, 1)] {
        let (r, password) = sim_router(id, &sim, index);
        fleet.open(r, password).await;
    }
    fleet
        .open(router(3, "127.0.0.1", closed_port(), "admin"), "x".into())
        .await;
    settle(&fleet, 3, counts(2, 0, 1)).await;
    assert_eq!(counted_by_walking(&fleet, &[1, 2, 3]), fleet.counts());

    // The router drops the connection: the session goes through offline or connecting
    // and back to open, counted once all along.
    sim.router(0).kill_connections();
    let deadline = Instant::now() + Duration::from_secs(10);
    while sim.router(0).logins() < 2 {
        let now = fleet.counts();
        assert_eq!(now.open + now.connecting + now.offline, 3, "{now:?}");
        assert!(Instant::now() < deadline, "no reconnect");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    settle(&fleet, 3, counts(2, 0, 1)).await;
    assert!(identity(&fleet, 1).await);

    // Opening a router that already has a session restarts it, still counted once.
    let (r, password) = sim_router(2, &sim, 1);
    fleet.open(r, password).await;
    settle(&fleet, 3, counts(2, 0, 1)).await;
    assert_eq!(sim.router(1).logins(), 2);

    // Closing removes the session from the counts whatever its phase.
    fleet.close(1).await;
    settle(&fleet, 2, counts(1, 0, 1)).await;
    fleet.close(3).await;
    settle(&fleet, 1, counts(1, 0, 0)).await;
    assert_eq!(counted_by_walking(&fleet, &[1, 2, 3]), fleet.counts());

    // A closed router opened again is counted again.
    let (r, password) = sim_router(1, &sim, 0);
    fleet.open(r, password).await;
    settle(&fleet, 2, counts(2, 0, 0)).await;

    fleet.shutdown().await;
    assert_eq!(fleet.counts(), counts(0, 0, 0));
    sim.shutdown();
}

/// A quiet session is probed by the fleet's keepalive sweep; a session in use is not
/// probed; a probe that gets no answer closes the connection and the session reconnects.
#[tokio::test]
async fn keepalive_sweep_probes_quiet_sessions_and_reconnects_after_a_failed_probe() {
    let sim = Simulator::start(SimConfig {
        routers: 2,
        ..SimConfig::default()
    })
    .await
    .expect("simulator starts");
    let fleet = fleet("1").await;
    for (id, index) in [(1, 0), (2, 1)] {
        let (r, password) = sim_router(id, &sim, index);
        fleet.open(r, password).await;
    }
    settle(&fleet, 2, counts(2, 0, 0)).await;

    // Quiet for three keepalives: router 0 sees probes. Router 1 gets a command every
    // 200 ms, so it is never idle for a keepalive and sees only those commands.
    let quiet_before = sim.router(0).commands();
    let busy_before = sim.router(1).commands();
    let mut sent = 0;
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        assert!(identity(&fleet, 2).await);
        sent += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let probes = sim.router(0).commands() - quiet_before;
    assert!((1..=4).contains(&probes), "{probes} probes in 3 s");
    assert_eq!(sim.router(1).commands() - busy_before, sent);
    assert_eq!(sim.router(0).logins(), 1);

    // The next probe hangs: it times out, the connection is closed, the session logs in
    // again and is open.
    sim.router(0).hang_next_command();
    let deadline = Instant::now() + Duration::from_secs(10);
    while sim.router(0).logins() < 2 {
        assert!(
            Instant::now() < deadline,
            "no reconnect after a failed probe"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    settle(&fleet, 2, counts(2, 0, 0)).await;
    assert!(identity(&fleet, 1).await);
    assert_eq!(sim.router(1).logins(), 1);

    fleet.shutdown().await;
    sim.shutdown();
}
