#!/usr/bin/env node
// Alibaba's Node.js SDKs, driven by the interop suite (tests/interop/nodeapi.py): one process per client, one JSON
// request per line on stdin, one JSON answer per line on stdout.
//
//   node bridge.js <tea|pop> <access key id> <port> <region>     (the secret comes on stdin's first line)
//   request:  {"action": "CreateVpnGateway", "params": {"VpcId": "...", "Tag": [{"Key": "k", "Value": "v"}]}}
//   answer:   {"ok": true, "status": 200, "body": {...}}  or  {"ok": false, "code": "...", "status": 400, "message": "..."}
//
// tea: @alicloud/vpc20160428 on @alicloud/openapi-core, its default ACS3-HMAC-SHA256 signature (the one Java, Go
// and Node share: only host, content-type and x-acs-* headers signed), each action through its typed request
// model and method, the body read back through its typed response model. pop: @alicloud/pop-core's RPCClient
// (HMAC-SHA1, signature version 1.0), flat parameters, the body as parsed JSON.
'use strict';

const readline = require('readline');

const [kind, accessKeyId, port, region] = process.argv.slice(2);
if (!['tea', 'pop'].includes(kind) || !accessKeyId || !port || !region) {
  process.stderr.write('usage: bridge.js <tea|pop> <access key id> <port> <region>\n');
  process.exit(2);
}

// Fills a typed model from wire-named values the way the Python SDK's from_map does: values as given (a test may
// send a wrong type on purpose: the server must refuse it, not the client), nested models and lists of models
// recursively. Returns the wire names the model has no field for.
function fill(model, wire, where) {
  const clz = model.constructor;
  const names = clz.names();
  const types = clz.types();
  const known = new Set(Object.values(names));
  const lost = Object.keys(wire).filter((k) => !known.has(k)).map((k) => where + k);
  for (const [key, origin] of Object.entries(names)) {
    const value = wire[origin];
    if (value === undefined || value === null) continue;
    const type = types[key];
    if (typeof type === 'function' && typeof type.names === 'function' && value && typeof value === 'object') {
      const inner = new type({});
      lost.push(...fill(inner, value, `${where}${origin}.`));
      model[key] = inner;
    } else if (type && type.type === 'array' && Array.isArray(value) && typeof type.itemType === 'function'
      && typeof type.itemType.names === 'function') {
      model[key] = value.map((item, i) => {
        if (!item || typeof item !== 'object') return item;
        const inner = new type.itemType({});
        lost.push(...fill(inner, item, `${where}${origin}.${i + 1}.`));
        return inner;
      });
    } else {
      model[key] = value;
    }
  }
  return lost;
}

// Where the server's JSON disagrees with the type the SDK's model declares (a number where it says string, ...):
// Node's models convert silently, but Go's and Java's typed decoders refuse the answer, so each is reported.
function audit(clz, raw, where, out) {
  if (!raw || typeof raw !== 'object') return out;
  const names = clz.names();
  const types = clz.types();
  for (const [key, origin] of Object.entries(names)) {
    const value = raw[origin];
    if (value === undefined || value === null) continue;
    const type = types[key];
    const path = where ? `${where}.${origin}` : origin;
    if (typeof type === 'string') {
      if (['string', 'number', 'boolean'].includes(type) && typeof value !== type) {
        out.push(`${path}: the SDK declares ${type}, the server sent ${typeof value} ${JSON.stringify(value)}`);
      }
    } else if (typeof type === 'function' && typeof type.names === 'function') {
      if (typeof value !== 'object' || Array.isArray(value)) out.push(`${path}: the SDK declares an object`);
      else audit(type, value, path, out);
    } else if (type && type.type === 'array') {
      if (!Array.isArray(value)) {
        out.push(`${path}: the SDK declares a list, the server sent ${typeof value}`);
      } else if (typeof type.itemType === 'function' && typeof type.itemType.names === 'function') {
        value.forEach((item, i) => audit(type.itemType, item, `${path}[${i}]`, out));
      } else if (typeof type.itemType === 'string' && ['string', 'number', 'boolean'].includes(type.itemType)) {
        value.forEach((item, i) => {
          if (typeof item !== type.itemType) {
            out.push(`${path}[${i}]: the SDK declares ${type.itemType}, the server sent ${typeof item}`);
          }
        });
      }
    }
  }
  return out;
}

function teaClient(secret) {
  const Vpc = require('@alicloud/vpc20160428');
  const { $OpenApiUtil } = require('@alicloud/openapi-core');
  const config = new $OpenApiUtil.Config({
    accessKeyId, accessKeySecret: secret, regionId: region, endpoint: `127.0.0.1:${port}`, protocol: 'http',
    readTimeout: 15000, connectTimeout: 5000,
  });
  const client = new Vpc.default(config);
  // The answer as the server sent it (parsed JSON), before the SDK casts it into its model.
  let raw = null;
  const callApi = client.callApi.bind(client);
  client.callApi = async (...args) => {
    raw = await callApi(...args);
    return raw;
  };
  return async (action, params) => {
    const Request = Vpc[`${action}Request`];
    if (typeof Request !== 'function') throw new Error(`the SDK has no ${action}Request`);
    const req = new Request({});
    const lost = fill(req, params, '');
    if (lost.length) throw new Error(`test bug: SDK model ${action}Request has no field(s) ${lost.sort().join(', ')}`);
    const method = action[0].toLowerCase() + action.slice(1);
    try {
      raw = null;
      const resp = await client[method](req);
      if (!resp.body) return { ok: false, code: 'SdkCouldNotMapBody', status: resp.statusCode, message: 'no body' };
      const Body = Vpc[`${action}ResponseBody`];
      const mismatches = raw && Body ? audit(Body, raw.body, '', []) : ['no raw answer to audit'];
      return { ok: true, status: resp.statusCode, body: resp.body.toMap(), mismatches };
    } catch (e) {
      if (e && e.code !== undefined && (e.statusCode !== undefined || (e.data && e.data.statusCode !== undefined))) {
        const status = e.statusCode !== undefined ? e.statusCode : e.data.statusCode;
        return { ok: false, code: String(e.code), status, message: String(e.message || ''), data: e.data || null };
      }
      throw e;
    }
  };
}

// pop-core flattens lists of scalars and of flat objects itself (Tag.1.Key); a nested object, at the top or inside a
// list's item (TunnelOptionsSpecification.1.TunnelIkeConfig), it would send as "[object Object]", so its callers
// flatten such requests by hand (Key.Sub, Key.N.Sub.Field), as done here.
function flattenObjects(params) {
  const out = {};
  const nested = (v) => v && typeof v === 'object';
  const walk = (prefix, value) => {
    if (Array.isArray(value)) {
      value.forEach((item, i) => walk(`${prefix}.${i + 1}`, item));
    } else if (nested(value)) {
      for (const [k, v] of Object.entries(value)) walk(`${prefix}.${k}`, v);
    } else {
      out[prefix] = value;
    }
  };
  for (const [k, v] of Object.entries(params)) {
    const deep = Array.isArray(v) && v.some((item) => nested(item) && Object.values(item).some(nested));
    if ((nested(v) && !Array.isArray(v)) || deep) walk(k, v);
    else out[k] = v;
  }
  return out;
}

function popClient(secret) {
  const RPCClient = require('@alicloud/pop-core').RPCClient;
  const client = new RPCClient({
    accessKeyId, accessKeySecret: secret, endpoint: `http://127.0.0.1:${port}`, apiVersion: '2016-04-28',
  }, true);
  return async (action, params) => {
    try {
      const [body, entry] = await client.request(action, flattenObjects(params), { method: 'POST', timeout: 15000 });
      return { ok: true, status: entry.response.statusCode, body };
    } catch (e) {
      if (e && e.code !== undefined && e.entry) {
        return {
          ok: false, code: String(e.code), status: e.entry.response.statusCode, message: String(e.message),
          data: e.data || null,
        };
      }
      throw e;
    }
  };
}

const lines = readline.createInterface({ input: process.stdin, terminal: false });
let call = null;
// One request at a time, answered in order.
let queue = Promise.resolve();
lines.on('line', (line) => {
  if (call === null) {
    call = kind === 'tea' ? teaClient(line) : popClient(line);
    return;
  }
  queue = queue.then(async () => {
    let answer;
    try {
      const { action, params } = JSON.parse(line);
      answer = await call(action, params || {});
    } catch (e) {
      answer = { ok: false, code: 'BridgeError', status: null, message: String((e && e.stack) || e) };
    }
    process.stdout.write(`${JSON.stringify(answer)}\n`);
  });
});
lines.on('close', () => queue.then(() => process.exit(0)));
