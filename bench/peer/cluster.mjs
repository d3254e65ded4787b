// PostGraphile 5 in N Node processes (node:cluster), as many as Clientdesk has workers: the
// fair peer of bench/run.py. The primary forks PEER_PROCESSES workers and serves no request;
// each worker builds the same schema from graphile.config.mjs and runs grafserv's Node adaptor
// on the shared port, as PostGraphile's CLI (postgraphile/dist/cli.js) does in one process.
// node:cluster's default scheduling on Linux is round-robin: the primary accepts each
// connection and hands it to the next worker. A worker that dies takes the run down with it
// (the bench must not measure fewer processes than it reports).
import cluster from "node:cluster";
import { createServer } from "node:http";
import { grafserv } from "postgraphile/grafserv/node";
import { postgraphile } from "postgraphile";
import preset from "./graphile.config.mjs";

const processes = Number(process.env.PEER_PROCESSES ?? 2);

if (cluster.isPrimary) {
  let listening = 0;
  for (let n = 0; n < processes; n++) cluster.fork();
  cluster.on("listening", () => {
    listening += 1;
    if (listening === processes) console.log(`${processes} PostGraphile processes listening`);
  });
  cluster.on("exit", (worker, code, signal) => {
    console.error(`PostGraphile process ${worker.process.pid} exited (${signal ?? code})`);
    process.exit(1);
  });
  for (const name of ["SIGTERM", "SIGINT"]) {
    process.on(name, () => {
      cluster.removeAllListeners("exit");
      for (const worker of Object.values(cluster.workers)) worker.kill();
      process.exit(0);
    });
  }
} else {
  const pgl = postgraphile(preset);
  const serv = pgl.createServ(grafserv);
  const server = createServer();
  serv.addTo(server).catch((error) => {
    console.error("Initializing server failed", error);
    process.exit(1);
  });
  server.on("error", (error) => {
    console.error("Server raised an error", error);
    process.exit(2);
  });
  server.listen({ port: preset.grafserv.port, host: preset.grafserv.host });
}
