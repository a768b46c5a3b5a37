// A small HTTP server: GET / says hello, GET /health answers 200 once it listens.
import { createServer } from 'node:http';

const port = Number(process.env.PORT ?? 3737);
let hits = 0;
const server = createServer((req, res) => {
  hits++;
  if (req.url === '/health') {
    res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
    return;
  }
  res.writeHead(200, { 'content-type': 'text/plain' }).end(`hello from pid ${process.pid} (request ${hits})\n`);
});
server.listen(port, '127.0.0.1', () => console.log(`listening on http://127.0.0.1:${port}`));
process.on('SIGTERM', () => {
  console.log('SIGTERM: closing the server');
  server.close(() => process.exit(0));
});
