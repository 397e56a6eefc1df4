// Origin (test server) of the http-cache-tests suite, bound to loopback.
//
// The suite's own server/server.mjs listens on every interface on a fixed
// port taken from npm config variables. This launcher reuses its request
// handlers unchanged but binds to 127.0.0.1 and accepts port 0 (any free
// port), printing the chosen port as its first line:
//
//   Listening on http://127.0.0.1:PORT/
//
// Usage: node origin.mjs [--host 127.0.0.1] [--port 0]

import http from 'http'
import path from 'path'
import process from 'process'
import { fileURLToPath } from 'url'

const here = path.dirname(fileURLToPath(import.meta.url))
const suite = process.env.CACHE_TESTS_SUITE_DIR ||
  path.join(here, 'node_modules', 'http-cache-tests')

let host = '127.0.0.1'
let port = 0
const argv = process.argv.slice(2)
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === '--host') host = argv[++i]
  else if (argv[i] === '--port') port = parseInt(argv[++i], 10)
  else {
    console.error(`origin.mjs: unknown argument ${argv[i]}`)
    process.exit(2)
  }
}

const { default: handleConfig } = await import(path.join(suite, 'server', 'handle-config.mjs'))
const { default: handleFile } = await import(path.join(suite, 'server', 'handle-file.mjs'))
const { default: handleState } = await import(path.join(suite, 'server', 'handle-state.mjs'))
const { default: handleTest } = await import(path.join(suite, 'server', 'handle-test.mjs'))

// Same dispatch as the suite's server/server.mjs (handleMain).
let baseUrl = `http://${host}:${port}/`
function handleMain (request, response) {
  let url
  try {
    url = new URL(request.url, baseUrl)
  } catch (e) {
    response.writeHead(400, { 'Content-Type': 'text/plain' })
    response.end(`bad request target ${request.url}\n`)
    return
  }
  const pathSegs = url.pathname.split('/')
  pathSegs.shift()
  const dispatch = pathSegs.shift()
  if (dispatch === 'config') {
    // log "config UUID TEST-ID" so proxy and relay logs (which only show
    // URLs) can be mapped back to test ids when debugging
    if (request.method === 'PUT') {
      let body = ''
      request.on('data', chunk => { body += chunk })
      request.on('end', () => {
        try {
          const reqs = JSON.parse(body)
          console.log(`config ${pathSegs[0]} ${reqs[0] && reqs[0].id}`)
        } catch (e) {}
      })
    }
    handleConfig(pathSegs, request, response)
  } else if (dispatch === 'test') {
    handleTest(pathSegs, request, response)
  } else if (dispatch === 'state') {
    handleState(pathSegs, request, response)
  } else {
    handleFile(url, request, response)
  }
}

const server = http.createServer(handleMain)
server.on('listening', () => {
  const addr = server.address()
  baseUrl = `http://${host}:${addr.port}/`
  console.log(`Listening on http://${addr.address}:${addr.port}/`)
})
server.on('error', err => {
  console.error(`origin.mjs: ${err.message}`)
  process.exit(1)
})
process.on('SIGTERM', () => process.exit(0))
process.on('SIGINT', () => process.exit(0))
server.listen(port, host)
