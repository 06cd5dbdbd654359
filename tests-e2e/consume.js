'use strict';
// Prints messages of a topic as they arrive, with the npm ali-ons push consumer (a third-party
// RocketMQ client), until interrupted or COUNT messages were printed. Usage:
//   node consume.js <namesrv host:port> <topic> [group] [count]
// One line per message: queue id, queue offset, tags, keys, body.
const { Consumer } = require('ali-ons');

const [ addr, topic, group = 'rmq_readme_consumer', countArg = '0' ] = process.argv.slice(2);
const count = Number(countArg);
const quiet = { info() {}, warn() {}, error() {}, debug() {} };
let seen = 0;

(async () => {
  const consumer = new Consumer({
    nameSrv: addr, httpclient: {}, logger: quiet, accessKeyId: 'k', accessKeySecret: 's',
    consumerGroup: group, consumeFromWhere: 'CONSUME_FROM_FIRST_OFFSET', persistent: true,
    // ali-ons rebalances on a timer only (it ignores NOTIFY_CONSUMER_IDS_CHANGED): tests shorten it.
    rebalanceInterval: Number(process.env.ALI_ONS_REBALANCE_MS || 10000),
  });
  consumer.on('error', () => {});
  consumer.subscribe(topic, '*', async msg => {
    process.stdout.write(`queue=${msg.queueId} offset=${msg.queueOffset} tags=${msg.tags} keys=${msg.keys} body=${msg.body.toString()}\n`);
    seen++;
    if (count > 0 && seen >= count) setTimeout(() => process.exit(0), 100);
  });
  await consumer.ready();
})().catch(err => {
  process.stderr.write(String(err && err.stack || err) + '\n');
  process.exit(1);
});
