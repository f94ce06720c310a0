//! Routers of every RouterOS generation behind the same API: 6.42 (MD5 challenge login,
//! no `!empty`), 6.49 (plain login, no `!empty`) and 7.18 (plain login, `!empty`).

mod common;

use cloudpilot::sim::SimConfig;
use common::TestEnv;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn each_generation_logs_in_and_reports_its_version() {
    let versions = ["6.42.12", "6.49.10", "7.18.2"];
    let sim = SimConfig {
        versions: versions.iter().map(|v| v.to_string()).collect(),
        ..Default::default()
    };
    let env = TestEnv::start_with(3, &[], sim).await;
    let u = env.user("gens").await;
    for (i, version) in versions.iter().enumerate() {
        assert_eq!(&env.sim.routers()[i].version, version);
        let id = env.add_router(&u, i).await;
        env.wait_online(&u, id).await;
        let (s, info) = env
            .get(&format!("/routers/{id}/device-info/"), &u.access)
            .await;
        assert_eq!(s, StatusCode::OK, "{info}");
        let shown = info["device_info"]["version"].as_str().unwrap();
        assert!(shown.starts_with(version), "{version}: {shown}");
        let (_, router) = env.get(&format!("/routers/{id}/"), &u.access).await;
        assert!(router["routeros_version"]
            .as_str()
            .unwrap()
            .starts_with(version));
        // An empty print is [] whether the router says !empty or not.
        let (s, r) = env
            .exec(
                &u,
                id,
                json!({"command": "ip/address", "params": {"comment": "no-such-comment"}}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{version}: {r}");
        assert_eq!(r["result"], json!([]), "{version}");
        assert_eq!(env.sim.router(i).logins(), 1, "{version}");
    }
}
