// Preloaded into dynalite (node -r guard.js cli.js ...). dynalite 4.0.0 rethrows the 'error' of an
// incoming request (index.js: req.on('error', function (err) { throw err })), so a client killed in
// the middle of a request (kill -9 of a writer, a client time-out) takes the whole server down.
// Such an abort concerns only that request: log it and keep serving. Anything else still crashes.
'use strict'
process.on('uncaughtException', function (err) {
  if (err && (err.code === 'ECONNRESET' || err.message === 'aborted')) {
    console.error(new Date().toISOString() + ' client aborted a request (' + (err.code || err.message) + '): ignored')
    return
  }
  console.error(err)
  process.exit(1)
})
