// Starts kinesalite (a real Kinesis API server) bound to 127.0.0.1 only.
// The kinesalite CLI listens on every interface; we call listen() ourselves instead.
'use strict'
const kinesalite = require('kinesalite')

const port = parseInt(process.env.KINESIS_PORT || process.argv[2] || '4567', 10)
const server = kinesalite({
  createStreamMs: parseInt(process.env.KINESALITE_CREATE_MS || '50', 10),
  deleteStreamMs: parseInt(process.env.KINESALITE_DELETE_MS || '50', 10),
  updateStreamMs: parseInt(process.env.KINESALITE_UPDATE_MS || '50', 10),
  shardLimit: parseInt(process.env.KINESALITE_SHARD_LIMIT || '1000', 10),
})
server.on('error', (err) => {
  console.error(`kinesalite: cannot listen on 127.0.0.1:${port}: ${err.message}`)
  process.exit(2)
})
server.listen(port, '127.0.0.1', () => {
  console.log(`kinesalite listening on 127.0.0.1:${port}`)
})
// kinesalite rethrows a request's 'error' event, so a client that dies mid-request (tests kill
// drivers with SIGKILL on purpose) would take the whole emulator down. Such a request is
// simply lost, as with real Kinesis; anything else is still fatal.
process.on('uncaughtException', (err) => {
  if (err && (err.code === 'ECONNRESET' || err.message === 'aborted')) {
    console.error(`kinesalite: client aborted a request (${err.code || err.message}); continuing`)
    return
  }
  console.error(err)
  process.exit(1)
})
const stop = () => server.close(() => process.exit(0))
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
