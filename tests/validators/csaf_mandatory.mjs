// Runs the BSI csaf-validator-lib on one CSAF 2.0 document: its strict CSAF 2.0 schema and
// every mandatory test of CSAF 2.0 section 6.1 (a document that fails one is not valid CSAF,
// whatever the schema says). Called by check_advisories.py, which reads the JSON it prints.
//
//   node csaf_mandatory.mjs NODE_MODULES_DIR DOCUMENT.json
//
// The library is loaded from the folder given, where .ci/run installs the pinned version; the
// optional and informative tests are left out, as they are advice, and some go to the network.

import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'

const [modules, file] = process.argv.slice(2)
if (!modules || !file) {
  process.stderr.write('usage: node csaf_mandatory.mjs NODE_MODULES_DIR DOCUMENT.json\n')
  process.exit(2)
}
const load = (name) =>
  import(pathToFileURL(join(modules, '@secvisogram/csaf-validator-lib', name)).href)

const { default: validateStrict } = await load('validateStrict.js')
const mandatory = await load('mandatoryTests.js')
const { csaf_2_0_strict } = await load('schemaTests.js')

const document = JSON.parse(await readFile(file, 'utf8'))
const result = await validateStrict([csaf_2_0_strict, ...Object.values(mandatory)], document)
const failed = result.tests
  .filter((test) => !test.isValid)
  .map((test) => ({ name: test.name, errors: test.errors }))
const warnings = result.tests.flatMap((test) =>
  test.warnings.map((w) => `${test.name}: ${w.instancePath || '(root)'}: ${w.message}`)
)
process.stdout.write(
  JSON.stringify({ isValid: result.isValid, tests: result.tests.length, failed, warnings }) + '\n'
)
process.exit(result.isValid ? 0 : 1)
