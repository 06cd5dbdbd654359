'use strict';
// Sends COUNT messages with the npm ali-ons producer and consumes them with the ali-ons push
// consumer, both through the NameServer at ADDR. Usage:
//   node produce_consume.js <namesrv host:port> <topic> <group> <count>
// stdout, one line each: `sent <n>` after every 100 acknowledged sends (the test restarts the
// broker on one of them), `got <key> <reconsumeTimes>` per consumed message, then
// `done sent=<n> failed_attempts=<n>` once every message was sent. A failed send (the broker
// restarting) is retried until acknowledged; the test decides when to stop the process.
const { Producer, Consumer, Message } = require('ali-ons');

const [ addr, topic, group, countArg ] = process.argv.slice(2);
const count = Number(countArg);
const quiet = { info() {}, warn() {}, error() {}, debug() {} };
const httpclient = {};
const common = { nameSrv: addr, httpclient, logger: quiet, accessKeyId: 'k', accessKeySecret: 's' };
const sleep = ms => new Promise(r => setTimeout(r, ms));

(async () => {
  const consumer = new Consumer(Object.assign({}, common, {
    consumerGroup: group,
    consumeFromWhere: 'CONSUME_FROM_FIRST_OFFSET',
    persistent: true,
    rebalanceInterval: 2000,
  }));
  consumer.on('error', () => {});
  consumer.subscribe(topic, '*', async msg => {
    process.stdout.write(`got ${msg.body.toString()} ${msg.reconsumeTimes}\n`);
  });
  await consumer.ready();

  const producer = new Producer(Object.assign({}, common, { producerGroup: group + '_P' }));
  producer.on('error', () => {});
  await producer.ready();
  let failed = 0;
  for (let i = 0; i < count; i++) {
    const msg = new Message(topic, 'TagA', `body-${i}`);
    msg.keys = [ `k-${i}` ];
    for (;;) {
      try {
        const r = await producer.send(msg);
        if (r.sendStatus === 'SEND_OK') break;
      } catch (e) {
        // the broker is restarting
      }
      failed++;
      await sleep(100);
    }
    if ((i + 1) % 100 === 0) process.stdout.write(`sent ${i + 1}\n`);
  }
  process.stdout.write(`done sent=${count} failed_attempts=${failed}\n`);
})().catch(err => {
  process.stderr.write(String(err && err.stack || err) + '\n');
  process.exit(1);
});
