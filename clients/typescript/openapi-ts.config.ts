import { defineConfig } from '@hey-api/openapi-ts';

// `cargo xtask clients` runs this; `cargo xtask clients --check` fails when src/generated
// differs from what the committed openapi/openapi.json generates.
export default defineConfig({
  input: '../../openapi/openapi.json',
  output: { path: 'src/generated', postProcess: [] },
  plugins: [{ name: '@hey-api/client-fetch', throwOnError: true }, '@hey-api/typescript', { name: '@hey-api/sdk', operations: { strategy: 'flat' } }],
});
