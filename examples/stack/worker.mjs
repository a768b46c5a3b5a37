// A worker that calls the web service every two seconds. tend starts it only
// once the web service is ready (depends_on + its readiness check).
import { get } from 'node:http';

const url = process.env.WEB_URL ?? 'http://127.0.0.1:3737/';
let job = 0;
setInterval(() => {
  const n = ++job;
  get(url, (res) => {
    let body = '';
    res.on('data', (chunk) => (body += chunk));
    res.on('end', () => console.log(`job ${n}: ${res.statusCode} ${body.trim()}`));
  }).on('error', (error) => console.log(`job ${n}: ${error.message}`));
}, 2000);
