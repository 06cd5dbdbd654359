//! Typed request/response pairs: a [`Call`] knows its request code, how to build its command
//! (header and body) and what a successful answer decodes to; any other answer is a
//! [`CallError::Refused`] carrying the code and remark. [`Caller::call`] sends one over a
//! [`RemotingClient`], as mini-redis ties a command to its frame.

use crate::route::{ClusterInfo, KvTable, TopicList, TopicRouteData};
use crate::ModelError;
use rmq_protocol::codes::{request, response};
use rmq_protocol::headers::broker::{
    RegisterBrokerRequestHeader, RegisterBrokerResponseHeader, UnRegisterBrokerRequestHeader,
    WipeWritePermOfBrokerRequestHeader,
};
use rmq_protocol::headers::kv::{
    GetKvListByNamespaceRequestHeader, KvConfigKeyRequestHeader, PutKvConfigRequestHeader,
};
use rmq_protocol::headers::route::{
    DeleteTopicFromNamesrvRequestHeader, GetRouteInfoRequestHeader, GetTopicsByClusterRequestHeader,
};
use rmq_protocol::RemotingCommand;
use rmq_remoting::{RemotingClient, RemotingError};
use std::future::Future;
use std::time::Duration;

/// Why a call did not produce its output.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// The request did not get an answer (connect, send, timeout...).
    #[error(transparent)]
    Remoting(#[from] RemotingError),
    /// The peer answered with a code other than success.
    #[error("refused with code {code} ({}): {remark}", response::name(*.code).unwrap_or("?"))]
    Refused {
        /// The response code.
        code: i32,
        /// The response remark (empty when none).
        remark: String,
    },
    /// The answer's header or body does not decode as it should.
    #[error(transparent)]
    Decode(#[from] ModelError),
}

impl CallError {
    /// The refusal's code, if the peer refused.
    pub fn refused_code(&self) -> Option<i32> {
        match self {
            CallError::Refused { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// A SUCCESS response, or the refusal it is.
    pub fn check(resp: RemotingCommand) -> Result<RemotingCommand, CallError> {
        if resp.code == response::SUCCESS {
            Ok(resp)
        } else {
            Err(CallError::Refused {
                code: resp.code,
                remark: resp.remark_str().unwrap_or("").to_owned(),
            })
        }
    }
}

/// A request with a typed answer.
pub trait Call {
    /// What a successful answer decodes to.
    type Output;
    /// The request code (for logs and errors).
    const CODE: i32;
    /// The request as a command (header fields, body).
    fn command(&self) -> RemotingCommand;
    /// Reads the answer: SUCCESS decodes to the output, any other code is a refusal.
    fn output(resp: RemotingCommand) -> Result<Self::Output, CallError>;
}

/// Sends [`Call`]s over a client.
pub trait Caller {
    /// Sends `req` to `addr` and decodes the answer, all within `timeout`.
    fn call<C: Call + Sync>(
        &self,
        addr: &str,
        req: &C,
        timeout: Duration,
    ) -> impl Future<Output = Result<C::Output, CallError>> + Send;
}

impl Caller for RemotingClient {
    async fn call<C: Call + Sync>(
        &self,
        addr: &str,
        req: &C,
        timeout: Duration,
    ) -> Result<C::Output, CallError> {
        let resp = self.invoke_sync(addr, req.command(), timeout).await?;
        C::output(resp)
    }
}

/// Declares a call: its type, code, the command it builds and how its answer decodes.
/// Shared with the broker request modules ([`crate::admin_call`], [`crate::client_call`]).
macro_rules! call {
    ($(#[$m:meta])* $name:ident => $code:expr, $out:ty, |$s:ident| $cmd:expr, |$r:ident| $dec:expr) => {
        $(#[$m])*
        impl Call for $name {
            type Output = $out;
            const CODE: i32 = $code;
            fn command(&self) -> RemotingCommand {
                let $s = self;
                $cmd
            }
            fn output(resp: RemotingCommand) -> Result<$out, CallError> {
                let $r = CallError::check(resp)?;
                $dec
            }
        }
    };
}

pub(crate) use call;

/// A typed response header, or [`CallError::Decode`] naming it.
pub(crate) fn response_header<H: rmq_protocol::custom_header::CommandCustomHeader>(
    resp: &RemotingCommand,
    what: &'static str,
) -> Result<H, CallError> {
    resp.decode_header().map_err(|e| {
        CallError::Decode(ModelError {
            what,
            reason: e.to_string(),
        })
    })
}

/// GET_ROUTEINFO_BY_TOPIC (105): a topic's route. Unknown topic: `Refused { code: 17 }`.
#[derive(Debug, Clone)]
pub struct GetRouteInfo {
    /// The topic.
    pub topic: String,
}

impl GetRouteInfo {
    /// Asks for `topic`'s route.
    pub fn new(topic: impl Into<String>) -> Self {
        GetRouteInfo {
            topic: topic.into(),
        }
    }
}

call!(GetRouteInfo => request::GET_ROUTEINFO_BY_TOPIC, TopicRouteData,
    |s| RemotingCommand::request_with_header(
        request::GET_ROUTEINFO_BY_TOPIC,
        &GetRouteInfoRequestHeader { topic: s.topic.clone(), accept_standard_json_only: None },
    ),
    |r| Ok(TopicRouteData::decode(&r.body)?));

/// GET_BROKER_CLUSTER_INFO (106): every cluster and broker group.
#[derive(Debug, Clone, Default)]
pub struct GetClusterInfo;

call!(GetClusterInfo => request::GET_BROKER_CLUSTER_INFO, ClusterInfo,
    |_s| RemotingCommand::request(request::GET_BROKER_CLUSTER_INFO),
    |r| Ok(ClusterInfo::decode(&r.body)?));

/// GET_ALL_TOPIC_LIST_FROM_NAMESERVER (206): every topic.
#[derive(Debug, Clone, Default)]
pub struct GetAllTopics;

call!(GetAllTopics => request::GET_ALL_TOPIC_LIST_FROM_NAMESERVER, TopicList,
    |_s| RemotingCommand::request(request::GET_ALL_TOPIC_LIST_FROM_NAMESERVER),
    |r| Ok(TopicList::decode(&r.body)?));

/// GET_TOPICS_BY_CLUSTER (224): a cluster's topics.
#[derive(Debug, Clone)]
pub struct GetTopicsByCluster {
    /// The cluster.
    pub cluster: String,
}

call!(GetTopicsByCluster => request::GET_TOPICS_BY_CLUSTER, TopicList,
    |s| RemotingCommand::request_with_header(
        request::GET_TOPICS_BY_CLUSTER,
        &GetTopicsByClusterRequestHeader { cluster: s.cluster.clone() },
    ),
    |r| Ok(TopicList::decode(&r.body)?));

/// GET_KV_CONFIG (101): one value. Missing: `Refused { code: 22 }` (QUERY_NOT_FOUND).
#[derive(Debug, Clone)]
pub struct GetKv {
    /// Namespace.
    pub namespace: String,
    /// Key.
    pub key: String,
}

call!(GetKv => request::GET_KV_CONFIG, String,
    |s| RemotingCommand::request_with_header(
        request::GET_KV_CONFIG,
        &KvConfigKeyRequestHeader { namespace: s.namespace.clone(), key: s.key.clone() },
    ),
    |r| Ok(r.ext("value").unwrap_or_default().to_owned()));

/// PUT_KV_CONFIG (100).
#[derive(Debug, Clone)]
pub struct PutKv {
    /// Namespace.
    pub namespace: String,
    /// Key.
    pub key: String,
    /// Value.
    pub value: String,
}

call!(PutKv => request::PUT_KV_CONFIG, (),
    |s| RemotingCommand::request_with_header(
        request::PUT_KV_CONFIG,
        &PutKvConfigRequestHeader {
            namespace: s.namespace.clone(),
            key: s.key.clone(),
            value: s.value.clone(),
        },
    ),
    |_r| Ok(()));

/// DELETE_KV_CONFIG (102).
#[derive(Debug, Clone)]
pub struct DeleteKv {
    /// Namespace.
    pub namespace: String,
    /// Key.
    pub key: String,
}

call!(DeleteKv => request::DELETE_KV_CONFIG, (),
    |s| RemotingCommand::request_with_header(
        request::DELETE_KV_CONFIG,
        &KvConfigKeyRequestHeader { namespace: s.namespace.clone(), key: s.key.clone() },
    ),
    |_r| Ok(()));

/// GET_KVLIST_BY_NAMESPACE (219): a namespace's entries.
#[derive(Debug, Clone)]
pub struct GetKvList {
    /// Namespace.
    pub namespace: String,
}

call!(GetKvList => request::GET_KVLIST_BY_NAMESPACE, KvTable,
    |s| RemotingCommand::request_with_header(
        request::GET_KVLIST_BY_NAMESPACE,
        &GetKvListByNamespaceRequestHeader { namespace: s.namespace.clone() },
    ),
    |r| Ok(KvTable::decode(&r.body)?));

/// WIPE_WRITE_PERM_OF_BROKER (205) or ADD_WRITE_PERM_OF_BROKER (327): how many topics changed.
#[derive(Debug, Clone)]
pub struct ChangeWritePerm {
    /// Broker group name.
    pub broker_name: String,
    /// Wipe (true) or restore (false).
    pub wipe: bool,
}

impl Call for ChangeWritePerm {
    type Output = i64;
    const CODE: i32 = request::WIPE_WRITE_PERM_OF_BROKER;

    fn command(&self) -> RemotingCommand {
        let code = if self.wipe {
            request::WIPE_WRITE_PERM_OF_BROKER
        } else {
            request::ADD_WRITE_PERM_OF_BROKER
        };
        RemotingCommand::request_with_header(
            code,
            &WipeWritePermOfBrokerRequestHeader {
                broker_name: self.broker_name.clone(),
            },
        )
    }

    fn output(resp: RemotingCommand) -> Result<i64, CallError> {
        let r = CallError::check(resp)?;
        let n = r
            .ext("wipeTopicCount")
            .or_else(|| r.ext("addTopicCount"))
            .unwrap_or("0");
        n.parse().map_err(|_| {
            CallError::Decode(ModelError {
                what: "topic count",
                reason: format!("not a number: {n:?}"),
            })
        })
    }
}

/// DELETE_TOPIC_IN_NAMESRV (216): a topic's routes, in one cluster or everywhere.
#[derive(Debug, Clone)]
pub struct DeleteTopicInNamesrv {
    /// Topic.
    pub topic: String,
    /// Only this cluster's brokers.
    pub cluster: Option<String>,
}

call!(DeleteTopicInNamesrv => request::DELETE_TOPIC_IN_NAMESRV, (),
    |s| RemotingCommand::request_with_header(
        request::DELETE_TOPIC_IN_NAMESRV,
        &DeleteTopicFromNamesrvRequestHeader { topic: s.topic.clone(), cluster_name: s.cluster.clone() },
    ),
    |_r| Ok(()));

/// GET_NAMESRV_CONFIG (319): the configuration as Java properties text.
#[derive(Debug, Clone, Default)]
pub struct GetNamesrvConfig;

call!(GetNamesrvConfig => request::GET_NAMESRV_CONFIG, String,
    |_s| RemotingCommand::request(request::GET_NAMESRV_CONFIG),
    |r| Ok(String::from_utf8_lossy(&r.body).into_owned()));

/// UPDATE_NAMESRV_CONFIG (318): `name=value` lines.
#[derive(Debug, Clone)]
pub struct UpdateNamesrvConfig {
    /// Properties text (`name=value` lines).
    pub properties: String,
}

call!(UpdateNamesrvConfig => request::UPDATE_NAMESRV_CONFIG, (),
    |s| RemotingCommand::request(request::UPDATE_NAMESRV_CONFIG).with_body(s.properties.clone()),
    |_r| Ok(()));

/// GET_BROKER_RUNTIME_INFO (28): a broker's runtime figures as a key/value table
/// (`brokerVersionDesc`, `msgPutTotalTodayNow`...).
#[derive(Debug, Clone, Default)]
pub struct GetBrokerRuntimeInfo;

call!(GetBrokerRuntimeInfo => request::GET_BROKER_RUNTIME_INFO, KvTable,
    |_s| RemotingCommand::request(request::GET_BROKER_RUNTIME_INFO),
    |r| Ok(KvTable::decode(&r.body)?));

/// REGISTER_BROKER (103): a broker's registration, header and RegisterBrokerBody (JSON, or the
/// compressed layout with `compressed`); the answer tells a slave where its master is.
#[derive(Debug, Clone)]
pub struct RegisterBroker {
    /// The header; `body_crc32` is filled in by [`RegisterBroker::new`].
    pub header: RegisterBrokerRequestHeader,
    /// The body.
    pub body: bytes::Bytes,
}

impl RegisterBroker {
    /// A registration of `body`, with the body's CRC (masked to 31 bits, as Java) in the header.
    pub fn new(mut header: RegisterBrokerRequestHeader, body: impl Into<bytes::Bytes>) -> Self {
        let body = body.into();
        header.body_crc32 = Some((crc32fast::hash(&body) & 0x7FFF_FFFF) as i32);
        RegisterBroker { header, body }
    }
}

call!(RegisterBroker => request::REGISTER_BROKER, RegisterBrokerResponseHeader,
|s| RemotingCommand::request_with_header(request::REGISTER_BROKER, &s.header)
    .with_body(s.body.clone()),
|r| r.decode_header().map_err(|e| CallError::Decode(ModelError {
    what: "RegisterBrokerResponseHeader",
    reason: e.to_string(),
})));

/// UNREGISTER_BROKER (104).
#[derive(Debug, Clone)]
pub struct UnregisterBroker {
    /// The header.
    pub header: UnRegisterBrokerRequestHeader,
}

call!(UnregisterBroker => request::UNREGISTER_BROKER, (),
    |s| RemotingCommand::request_with_header(request::UNREGISTER_BROKER, &s.header),
    |_r| Ok(()));
