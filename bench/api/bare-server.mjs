// The reference of the API benchmark: a bare Fastify 5 route in its own process, answering a fixed JSON body
// (the body the real server gave for the measured list request, so both move the same bytes).
// Usage: node bare-server.mjs <body.json>   — prints {"port":N} on stdout once listening on 127.0.0.1.
import { readFileSync } from 'node:fs';
import process from 'node:process';
import Fastify from 'fastify';

const bodyFile = process.argv[2];
if (!bodyFile) {
  process.stderr.write('usage: bare-server.mjs <body.json>\n');
  process.exit(2);
}
// Parsed once; Fastify serializes it on every request, as the real route serializes its DTO.
const body = JSON.parse(readFileSync(bodyFile, 'utf8'));

const app = Fastify({ logger: false });
app.get('/be/v1/users', async () => body);

await app.listen({ host: '127.0.0.1', port: 0 });
process.stdout.write(JSON.stringify({ port: app.server.address().port }) + '\n');

const stop = () => app.close().then(() => process.exit(0), () => process.exit(1));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
