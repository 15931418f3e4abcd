// The command line every Node peer takes (see loadtest/peers/*/server.js):
//   --listen HOST:PORT  (default 127.0.0.1:9001; port 0 picks a free port)
//   --rate N            messages per second published in total (default 1000)
//   --size BYTES        payload size of each message (default 200, minimum 16)
// plus the integer flags a peer adds (`extra`: flag -> [option name,
// default, check, what the check requires]). Bad input exits with code 2
// and the usage line.
'use strict';

function parseArgs(argv, name, extra = {}) {
  const extraUsage = Object.keys(extra)
    .map((f) => ` [${f} N]`)
    .join('');
  const usage = (msg) => {
    process.stderr.write(
      `${msg}\nusage: node server.js [--listen HOST:PORT] [--rate N] [--size BYTES]${extraUsage}\n`,
    );
    process.exit(2);
  };
  const opts = { listen: '127.0.0.1:9001', rate: 1000, size: 200 };
  for (const [key, dflt] of Object.values(extra)) opts[key] = dflt;
  for (let i = 0; i < argv.length; i++) {
    let arg = argv[i];
    let value;
    const eq = arg.indexOf('=');
    if (arg.startsWith('--') && eq !== -1) {
      value = arg.slice(eq + 1);
      arg = arg.slice(0, eq);
    }
    const next = () => {
      if (value !== undefined) return value;
      if (i + 1 >= argv.length) usage(`missing value for ${arg}`);
      return argv[++i];
    };
    if (arg === '--listen') opts.listen = next();
    else if (arg === '--rate') opts.rate = Number(next());
    else if (arg === '--size') opts.size = Number(next());
    else if (arg in extra) opts[extra[arg][0]] = Number(next());
    else if (arg === '-h' || arg === '--help') usage(name);
    else usage(`unknown argument: ${arg}`);
  }
  if (!Number.isInteger(opts.rate) || opts.rate < 0) usage('--rate must be a non-negative integer');
  if (!Number.isInteger(opts.size) || opts.size < 16) usage('--size must be an integer >= 16');
  for (const [flag, [key, , ok, what]] of Object.entries(extra)) {
    if (!Number.isInteger(opts[key]) || !ok(opts[key])) usage(`${flag} must be ${what}`);
  }
  const colon = opts.listen.lastIndexOf(':');
  if (colon <= 0) usage('--listen must be HOST:PORT');
  let host = opts.listen.slice(0, colon);
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  const port = Number(opts.listen.slice(colon + 1));
  if (!Number.isInteger(port) || port < 0 || port > 65535) usage('bad port in --listen');
  opts.host = host;
  opts.port = port;
  return opts;
}

module.exports = { parseArgs };
