// age-parse.mjs - hopcache's replacement for the suite's "age-parse" group.
//
// http-cache-tests 0.4.5 (the version on the npm registry) expects a cache to
// treat every unusual Age value as "stale". RFC 9111 §5.1 says otherwise:
// "a cache encountering a message with a list-based Age field value SHOULD
// use the first member of the field value, discarding subsequent ones. If
// the field value (after discarding additional members, as per above) is
// invalid (e.g., it contains something other than a non-negative integer), a
// cache SHOULD ignore the field." The suite's own repository has since been
// corrected to that reading, with these test ids; this file expresses the
// same cases from the RFC text, for the pinned package. run.sh puts it in
// place of the package's file (see README.md, "Overrides").
//
// Each case: a fresh response (Date now, max-age) carrying the given Age
// line(s); the second request must be served from the cache ('cached') or
// must go to the origin ('not_cached').

const cases = [
  // id suffix, what, Age field lines, max-age, expected, kind
  ['nonnumeric', 'ignore a non-numeric Age', ['abc'], 3600, 'cached'],
  ['negative', 'ignore a negative Age', ['-7200'], 3600, 'cached'],
  ['float', 'ignore a fractional Age', ['7200.0'], 3600, 'cached'],
  ['large-minus-one', 'Age 2147483647 is stale', ['2147483647'], 3600, 'not_cached'],
  ['large', 'Age 2147483648 is stale', ['2147483648'], 3600, 'not_cached'],
  ['larger', 'Age 2147483649 is stale', ['2147483649'], 3600, 'not_cached'],
  ['suffix', 'one line "old, 0": the first member, stale', ['7200, 0'], 3600, 'not_cached'],
  ['prefix', 'one line "0, old": the first member, fresh', ['0, 7200'], 3600, 'cached'],
  ['suffix-twoline', 'two lines old / 0: the first, stale', ['7200', '0'], 3600, 'not_cached'],
  ['prefix-twoline', 'two lines 0 / old: the first, fresh', ['0', '7200'], 3600, 'cached'],
  ['dup-0', 'one line "0, 0" is fresh', ['0, 0'], 3600, 'cached'],
  ['dup-0-twoline', 'two lines "0" are fresh', ['0', '0'], 3600, 'cached'],
  ['dup-old', 'two lines of a not-yet-stale age are fresh', ['3600', '3600'], 10000, 'cached'],
  ['parameter', 'is an alphabetic parameter on Age valid?', ['7200;foo=bar'], 3600, 'not_cached', 'check'],
  ['numeric-parameter', 'is a numeric parameter on Age valid?', ['7200;foo=111'], 3600, 'not_cached', 'check']
]

export default {
  name: 'Age Parsing',
  id: 'age-parse',
  description: 'How a cache parses the `Age` response header (RFC 9111 §5.1; hopcache override of the 0.4.5 group).',
  spec_anchors: ['field.age', 'expiration.model'],
  tests: cases.map(([suffix, what, ages, maxAge, expected, kind]) => {
    const test = {
      name: `HTTP cache should ${what}`,
      id: `age-parse-${suffix}`,
      depends_on: ['freshness-max-age-age'],
      requests: [
        {
          response_headers: [
            ['Date', 0],
            ['Cache-Control', `max-age=${maxAge}`],
            ...ages.map(a => ['Age', a, false])
          ],
          setup: true,
          pause_after: true
        },
        { expected_type: expected }
      ]
    }
    if (kind) test.kind = kind
    return test
  })
}
