// fastest-sandbox-bridge: Cloudflare's Sandbox bridge, unchanged. Every /v1 route, auth
// (SANDBOX_API_KEY) and the warm pool come from @cloudflare/sandbox/bridge; fastest only supplies
// the container image (../Dockerfile). Upgrade by bumping @cloudflare/sandbox in package.json and
// the FROM tag in the Dockerfile together.
import { bridge } from '@cloudflare/sandbox/bridge';

// Durable Object classes the wrangler.jsonc bindings name.
export { Sandbox } from '@cloudflare/sandbox';
export { WarmPool } from '@cloudflare/sandbox/bridge';

export default bridge({
  async fetch(): Promise<Response> {
    // Paths outside /v1 and /health.
    return new Response('OK');
  },
});
