//! Routes and heartbeats: the subscribed topics' routes from the NameServer (refreshed with
//! every heartbeat, every `heartbeat_interval`), broker addresses from them, and the HEART_BEAT
//! that keeps this member in its group on every broker.

use crate::state::{ConsumerState, RPC_TIMEOUT};
use rmq_model::call::GetRouteInfo;
use rmq_model::heartbeat::{ConsumerData, HeartbeatData};

impl ConsumerState {
    /// The master address of broker group `broker_name`.
    pub(crate) fn master_of(&self, broker_name: &str) -> Option<String> {
        let routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        routes
            .values()
            .find_map(|r| r.master_addr(broker_name).map(str::to_owned))
    }

    /// The address of broker `id` of a group (a slave the broker suggested), else the master;
    /// `true` when it is the master.
    pub(crate) fn addr_of(&self, broker_name: &str, id: i64) -> Option<(String, bool)> {
        if id != 0 {
            let routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
            let found = routes.values().find_map(|r| {
                r.broker_datas
                    .iter()
                    .find(|b| b.broker_name == broker_name)
                    .and_then(|b| b.broker_addrs.get(&id).cloned())
            });
            if let Some(a) = found {
                return Some((a, false));
            }
        }
        self.master_of(broker_name).map(|a| (a, true))
    }

    /// Every master of the routed topics, sorted, once each.
    pub(crate) fn broker_addrs(&self) -> Vec<String> {
        let routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        let mut v: Vec<String> = routes
            .values()
            .flat_map(|r| {
                r.broker_datas
                    .iter()
                    .filter_map(|b| b.broker_addrs.get(&0).cloned())
            })
            .collect();
        v.sort();
        v.dedup();
        v
    }

    /// Reads every subscribed topic's route from the NameServer (a topic without one keeps
    /// its last).
    pub(crate) async fn refresh_routes(&self) {
        for topic in self.topics() {
            match self.namesrv.read(&GetRouteInfo::new(topic.clone())).await.1 {
                Ok(route) => {
                    self.routes
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(topic, route);
                }
                Err(e) => tracing::debug!(topic, error = %e, "no route"),
            }
        }
    }

    fn heartbeat_data(&self) -> HeartbeatData {
        let subs = self.subscriptions.lock().unwrap_or_else(|p| p.into_inner());
        HeartbeatData {
            client_id: self.client_id.clone(),
            consumer_data_set: vec![ConsumerData {
                consume_from_where: self.config.consume_from.java_name().into(),
                consume_type: if self.delivery.poll_tx().is_some() {
                    "CONSUME_ACTIVELY"
                } else {
                    "CONSUME_PASSIVELY"
                }
                .into(),
                group_name: self.config.group.clone(),
                message_model: if self.config.broadcasting {
                    "BROADCASTING"
                } else {
                    "CLUSTERING"
                }
                .into(),
                subscription_data_set: subs.values().cloned().collect(),
                unit_mode: false,
            }],
            ..Default::default()
        }
    }

    /// HEART_BEAT to every master: this member, its group and subscriptions.
    pub(crate) async fn heartbeat(&self) {
        let hb = self.heartbeat_data();
        for addr in self.broker_addrs() {
            if let Err(e) = self
                .client
                .invoke_sync(&addr, hb.request(), RPC_TIMEOUT)
                .await
            {
                tracing::warn!(broker = %addr, error = %e, "heartbeat failed");
            }
        }
    }
}
