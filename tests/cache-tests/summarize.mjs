// Summarize an http-cache-tests results file (the JSON the suite's CLI prints).
//
// Usage: node summarize.mjs RESULTS.json [--by-suite] [--all-failures] [--json]
//
// A results file maps test id -> true (passed) or [errorName, message]
// (errorName "Assertion": the cache misbehaved; "Setup": the exchange did not
// go as the test needs, e.g. the response was not cached in the first place;
// anything else: the harness broke). Test metadata (kind, name, depends_on)
// comes from the installed suite, so the summary uses the same definitions
// the run did.
//
// Kinds: "required" (a failure is a conformance problem), "optimal" (a
// failure means the cache missed a chance to reuse a response; legal but not
// optimal), "check" (informational yes/no behaviour survey; not pass/fail).

import fs from 'fs'
import path from 'path'
import process from 'process'
import { fileURLToPath } from 'url'

const here = path.dirname(fileURLToPath(import.meta.url))
const suiteDir = process.env.CACHE_TESTS_SUITE_DIR ||
  path.join(here, 'node_modules', 'http-cache-tests')

const args = process.argv.slice(2)
const flags = new Set(args.filter(a => a.startsWith('--')))
const files = args.filter(a => !a.startsWith('--'))
if (files.length !== 1) {
  console.error('usage: node summarize.mjs RESULTS.json [--by-suite] [--all-failures] [--json]')
  process.exit(2)
}

const { default: suites } = await import(path.join(suiteDir, 'tests', 'index.mjs'))
const { default: surrogate } = await import(path.join(suiteDir, 'tests', 'surrogate-control.mjs'))
if (!suites.includes(surrogate)) suites.push(surrogate) // the CLI adds it too
const suiteVersion = JSON.parse(fs.readFileSync(path.join(suiteDir, 'package.json'))).version

let results
try {
  results = JSON.parse(fs.readFileSync(files[0], 'utf8'))
} catch (e) {
  console.error(`summarize.mjs: cannot read results ${files[0]}: ${e.message}`)
  process.exit(1)
}

const tests = new Map()
const suiteOf = new Map()
for (const suite of suites) {
  for (const test of suite.tests) {
    if (test.browser_only === true) continue // the CLI never runs these
    tests.set(test.id, test)
    suiteOf.set(test.id, suite)
  }
}

// Same classification as the suite's lib/display.mjs determineTestResult().
function outcome (id, honorDeps) {
  const test = tests.get(id)
  const result = results[id]
  if (result === undefined) return 'untested'
  if (honorDeps && test.depends_on !== undefined) {
    for (const dep of test.depends_on) {
      if (!tests.has(dep)) continue
      const d = outcome(dep, true)
      if (d !== 'pass' && d !== 'yes') return 'dependency_fail'
    }
  }
  if (result !== true) {
    if (result[0] === 'Setup') return result[1] === 'retry' ? 'retry' : 'setup_fail'
    if (result[0] !== 'Assertion') return 'harness_fail'
  }
  const kind = test.kind || 'required'
  if (kind === 'required') return result === true ? 'pass' : 'fail'
  if (kind === 'optimal') return result === true ? 'pass' : 'optional_fail'
  if (kind === 'check') return result === true ? 'yes' : 'no'
  throw new Error(`unknown test kind ${kind}`)
}

// Tests that need a word of explanation when they fail (suite 0.4.5).
function annotation (id) {
  if (/^stale-close-/.test(id)) {
    return 'cannot pass through any proxy: the origin drops the connection, so the ' +
      'answer is a proxy error without Server-Request-Count, which the test reads as ' +
      '"comes from cache"; cache-tests.fyi only shows it grey (dependency stale-close)'
  }
  if (/^surrogate-/.test(id)) {
    return 'Surrogate-Control is for surrogates (reverse proxies, CDNs); Squid honours it ' +
      'only in accel mode; not part of RFC 9111'
  }
  if (/^invalidate-(PUT|DELETE|M-SEARCH)-location$/.test(id)) {
    return 'despite its name the suite sends POST here'
  }
  return ''
}

function plainName (name) {
  return name.replace(/\[([^\]]*)\]\([^)]*\)/g, '$1').replace(/`/g, '')
}

function message (id) {
  const r = results[id]
  if (r === true || r === undefined) return ''
  return `${r[0]}: ${r[1]}`
}

const kinds = ['required', 'optimal', 'check']
const stat = {}
for (const k of kinds) stat[k] = { total: 0, passed: 0, passedDeps: 0, outcomes: {} }
const perSuite = new Map()
const failing = { required: [], optimal: [] }
for (const [id, test] of tests) {
  const kind = test.kind || 'required'
  const s = stat[kind]
  const raw = outcome(id, false)
  const shown = outcome(id, true)
  s.total++
  s.outcomes[raw] = (s.outcomes[raw] || 0) + 1
  if (results[id] === true) s.passed++
  if (shown === 'pass' || shown === 'yes') s.passedDeps++
  const suite = suiteOf.get(id)
  if (!perSuite.has(suite.id)) perSuite.set(suite.id, { name: suite.name, required: [0, 0], optimal: [0, 0] })
  if (kind !== 'check') {
    const ps = perSuite.get(suite.id)[kind]
    ps[1]++
    if (results[id] === true) ps[0]++
    else failing[kind].push({ id, name: plainName(test.name), outcome: raw, shown, message: message(id), note: annotation(id) })
  }
}
const unknown = Object.keys(results).filter(id => !tests.has(id))

if (flags.has('--json')) {
  console.log(JSON.stringify({ suite_version: suiteVersion, stat, failing, unknown }, null, 2))
  process.exit(0)
}

function breakdown (o) {
  const order = ['fail', 'optional_fail', 'setup_fail', 'harness_fail', 'retry', 'untested']
  const parts = order.filter(k => o[k]).map(k => `${o[k]} ${k.replace('_', '-')}`)
  return parts.length ? ` (${parts.join(', ')})` : ''
}

const r = stat.required
const o = stat.optimal
const c = stat.check
console.log(`http-cache-tests ${suiteVersion} results: ${files[0]}`)
console.log(`required: ${r.passed}/${r.total} passed${breakdown(r.outcomes)}`)
console.log(`optimal:  ${o.passed}/${o.total} passed${breakdown(o.outcomes)}`)
console.log(`check:    ${c.passed} yes / ${c.total - c.passed} no, of ${c.total} (informational)`)
console.log(`as cache-tests.fyi shows it (a pass whose dependency did not pass is grey): ` +
  `required ${r.passedDeps}/${r.total}, optimal ${o.passedDeps}/${o.total}`)
{
  const unpassable = failing.required.filter(f => /^stale-close-/.test(f.id)).length
  const surrogateReq = failing.required.filter(f => /^surrogate-/.test(f.id)).length
  if (unpassable || surrogateReq) {
    console.log(`of the ${failing.required.length} failing required: ${unpassable} cannot pass through any proxy (stale-close-*), ` +
      `${surrogateReq} are Surrogate-Control (CDN) tests`)
  }
}
if (unknown.length) console.log(`ids not in this suite version (ignored): ${unknown.length}`)

if (flags.has('--by-suite')) {
  console.log('\nper suite (required passed/total, optimal passed/total):')
  for (const [id, ps] of perSuite) {
    console.log(`  ${(ps.required[0] + '/' + ps.required[1]).padStart(7)}  ${(ps.optimal[0] + '/' + ps.optimal[1]).padStart(7)}  ${id} (${ps.name})`)
  }
}

function listFailures (title, list) {
  console.log(`\n${title} (${list.length}):`)
  for (const f of list) {
    console.log(`  ${f.id}  [${f.outcome}${f.shown === 'dependency_fail' ? ', dependency failed' : ''}]`)
    console.log(`      ${f.name}`)
    if (f.message) console.log(`      -> ${f.message}`)
    if (f.note) console.log(`      (note: ${f.note})`)
  }
}
listFailures('failing required tests', failing.required)
if (flags.has('--all-failures')) listFailures('failing optimal tests', failing.optimal)
