//! The REST-to-sentence mapping of execute-command: parsing and normalising the request
//! body into a `RestRequest`, and building the RouterOS command it sends.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::json;

use cloudpilot::routeros::{Command, RestRequest};

fn bench(c: &mut Criterion) {
    let params = json!({"interface": "ether1", ".proplist": "address,interface"});
    c.bench_function("rest_request_parse_get_with_params", |b| {
        b.iter(|| {
            RestRequest::parse(Some("GET"), black_box("ip/address"), Some(&params), None)
                .expect("valid request")
        })
    });
    let data = json!({"address": "10.0.0.1/24", "interface": "ether1", "comment": "lab"});
    c.bench_function("rest_request_parse_put", |b| {
        b.iter(|| {
            RestRequest::parse(Some("PUT"), black_box("/ip/address/"), None, Some(&data))
                .expect("valid request")
        })
    });
    // Building the sentence the way a PUT maps to `add`: the path, then one `=k=v` per
    // field of data. The private mapping in routeros::execute does the same word by word.
    let req = RestRequest::parse(Some("PUT"), "ip/address", None, Some(&data)).expect("valid");
    c.bench_function("rest_request_to_add_command", |b| {
        b.iter(|| {
            let req = black_box(&req);
            let mut cmd = Command::new(format!("/{}/add", req.menu()));
            for (k, v) in &req.data {
                cmd = cmd.attr(k, v.as_str().unwrap_or_default());
            }
            cmd
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
