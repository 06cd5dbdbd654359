'use strict';
// Looks up a topic route with the npm ali-ons client (pure JavaScript remoting) and prints it as
// JSON. Usage: node route_lookup.js <namesrv host:port> <topic>. Exits 1 with the error otherwise.
const MQClientAPI = require('ali-ons/lib/mq_client_api');

const [ addr, topic ] = process.argv.slice(2);
const quiet = { info() {}, warn() {}, error() {}, debug() {} };

(async () => {
  // httpclient is only used to fetch NameServer lists over HTTP, which nameSrv makes unnecessary.
  const api = new MQClientAPI({ nameSrv: addr, httpclient: {}, logger: quiet, responseTimeout: 3000 });
  await api.ready();
  const route = await api.getTopicRouteInfoFromNameServer(topic, 3000);
  process.stdout.write(JSON.stringify(route));
  await api.close();
  process.exit(0);
})().catch(err => {
  process.stderr.write(String(err && err.stack || err));
  process.exit(1);
});
