//! Server reflection (grpc.reflection.v1 and v1alpha, for old and new grpcurl) and
//! grpc.health.v1, spoken directly with tonic's generated clients.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bpfmap_tests::TestEnv;
use prost::Message;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

const RPCS: [&str; 15] = [
    "CreateMap",
    "GetMap",
    "ListMaps",
    "DeleteMap",
    "PinMap",
    "UnpinMap",
    "FreezeMap",
    "Lookup",
    "Update",
    "Delete",
    "LookupAndDelete",
    "GetNextKey",
    "Dump",
    "BatchUpdate",
    "BatchDelete",
];

fn check_descriptor(files: &[bytes::Bytes]) {
    let protos: Vec<prost_types::FileDescriptorProto> = files
        .iter()
        .map(|b| prost_types::FileDescriptorProto::decode(b.as_ref()).unwrap())
        .collect();
    let file = protos
        .iter()
        .find(|f| f.name() == "bpfmap/v1/maps.proto")
        .unwrap_or_else(|| {
            panic!(
                "no bpfmap/v1/maps.proto in {:?}",
                protos.iter().map(|f| f.name()).collect::<Vec<_>>()
            )
        });
    assert_eq!(file.package(), "bpfmap.v1");
    let svc = file
        .service
        .iter()
        .find(|s| s.name() == "MapService")
        .expect("MapService");
    let methods: Vec<&str> = svc.method.iter().map(|m| m.name()).collect();
    for rpc in RPCS {
        assert!(methods.contains(&rpc), "{rpc} missing from {methods:?}");
    }
    let dump = svc.method.iter().find(|m| m.name() == "Dump").unwrap();
    assert!(dump.server_streaming());
    let batch = svc
        .method
        .iter()
        .find(|m| m.name() == "BatchUpdate")
        .unwrap();
    assert!(batch.client_streaming());
}

#[tokio::test]
async fn reflection_v1_lists_services_and_serves_the_descriptor() {
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    let Some(t) = TestEnv::start().await else {
        return;
    };
    let channel = bpfmap_client::connect_channel(&t.daemon.unix_addr())
        .await
        .unwrap();
    let mut client = ServerReflectionClient::new(channel);
    let reqs = vec![
        ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        },
        ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::FileContainingSymbol(
                "bpfmap.v1.MapService".into(),
            )),
        },
    ];
    let mut stream = client
        .server_reflection_info(tokio_stream::iter(reqs))
        .await
        .unwrap()
        .into_inner();
    let mut services = Vec::new();
    let mut files = Vec::new();
    while let Some(resp) = stream.message().await.unwrap() {
        match resp.message_response {
            Some(MessageResponse::ListServicesResponse(l)) => {
                services.extend(l.service.into_iter().map(|s| s.name))
            }
            Some(MessageResponse::FileDescriptorResponse(f)) => {
                files.extend(f.file_descriptor_proto.into_iter().map(bytes::Bytes::from))
            }
            other => panic!("unexpected reflection answer {other:?}"),
        }
    }
    assert!(
        services.iter().any(|s| s == "bpfmap.v1.MapService"),
        "{services:?}"
    );
    assert!(
        services.iter().any(|s| s == "grpc.health.v1.Health"),
        "{services:?}"
    );
    check_descriptor(&files);
}

#[tokio::test]
async fn reflection_v1alpha_serves_the_descriptor_for_older_grpcurl() {
    use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1alpha::ServerReflectionRequest;
    let Some(t) = TestEnv::start().await else {
        return;
    };
    let channel = bpfmap_client::connect_channel(&t.daemon.unix_addr())
        .await
        .unwrap();
    let mut client = ServerReflectionClient::new(channel);
    let reqs = vec![
        ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        },
        ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::FileContainingSymbol(
                "bpfmap.v1.MapService".into(),
            )),
        },
    ];
    let mut stream = client
        .server_reflection_info(tokio_stream::iter(reqs))
        .await
        .unwrap()
        .into_inner();
    let mut services = Vec::new();
    let mut files = Vec::new();
    while let Some(resp) = stream.message().await.unwrap() {
        match resp.message_response {
            Some(MessageResponse::ListServicesResponse(l)) => {
                services.extend(l.service.into_iter().map(|s| s.name))
            }
            Some(MessageResponse::FileDescriptorResponse(f)) => {
                files.extend(f.file_descriptor_proto.into_iter().map(bytes::Bytes::from))
            }
            other => panic!("unexpected reflection answer {other:?}"),
        }
    }
    assert!(
        services.iter().any(|s| s == "bpfmap.v1.MapService"),
        "{services:?}"
    );
    check_descriptor(&files);
}

#[tokio::test]
async fn health_reports_serving() {
    let Some(t) = TestEnv::start().await else {
        return;
    };
    let channel = bpfmap_client::connect_channel(&t.daemon.unix_addr())
        .await
        .unwrap();
    let mut health = HealthClient::new(channel);
    for service in ["", "bpfmap.v1.MapService"] {
        let r = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap_or_else(|s| panic!("Health/Check {service:?}: {s:?}"))
            .into_inner();
        assert_eq!(
            r.status,
            ServingStatus::Serving as i32,
            "service {service:?}"
        );
    }
}
