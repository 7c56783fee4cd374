// The official OpenAI Node client against a router's HTTP API. OpenAiNodeClientTest starts the router, runs
// this with EXPERTMESH_BASE_URL (http://127.0.0.1:PORT/v1) and EXPERTMESH_MODEL, and checks the one JSON line it
// prints: what the client library made of each answer. Any exception is a failure (exit 1, on stderr).
import OpenAI from 'openai';

const client = new OpenAI({
  baseURL: process.env.EXPERTMESH_BASE_URL,
  apiKey: process.env.EXPERTMESH_TOKEN ?? 'unused',
  maxRetries: 0,
  timeout: 60_000,
});
const model = process.env.EXPERTMESH_MODEL;
const messages = [
  { role: 'system', content: 'You are a terse assistant.' },
  { role: 'user', content: 'Say something about the sea.' },
];
const out = {};

const chat = await client.chat.completions.create({
  model, messages, max_completion_tokens: 8, temperature: 0, logprobs: true, top_logprobs: 2,
  // vLLM's extension, passed through as the client passes unknown fields
  ignore_eos: true,
});
out.chat = {
  content: chat.choices[0].message.content,
  finish_reason: chat.choices[0].finish_reason,
  logprob_tokens: chat.choices[0].logprobs.content.length,
  top_logprobs: chat.choices[0].logprobs.content[0].top_logprobs.length,
  usage: chat.usage,
};

const stream = await client.chat.completions.create({
  model, messages, max_completion_tokens: 8, temperature: 0, ignore_eos: true, stream: true,
  stream_options: { include_usage: true },
});
let streamed = '';
let finish = null;
let usage = null;
for await (const chunk of stream) {
  if (chunk.choices.length > 0) {
    streamed += chunk.choices[0].delta.content ?? '';
    finish = chunk.choices[0].finish_reason ?? finish;
  }
  usage = chunk.usage ?? usage;
}
out.chat_stream = { content: streamed, finish_reason: finish, usage };

const completion = await client.completions.create({
  model, prompt: 'The harbour at dawn', max_tokens: 5, temperature: 0, logprobs: 1, ignore_eos: true,
});
out.completion = {
  text: completion.choices[0].text,
  finish_reason: completion.choices[0].finish_reason,
  tokens: completion.choices[0].logprobs.tokens.length,
  usage: completion.usage,
};

// a stream the client abandons part-way: the router must cancel it
const controller = new AbortController();
const long = await client.completions.create({
  model, prompt: 'The harbour at dawn', max_tokens: 3000, ignore_eos: true, stream: true,
}, { signal: controller.signal });
let seen = 0;
try {
  for await (const chunk of long) {
    if (++seen === 2) {
      // break too: chunks already read into the client's buffer still come out after abort(), so a busy machine
      // (several events in one read) would count 3
      controller.abort();
      break;
    }
  }
} catch (e) {
  if (!(e instanceof OpenAI.APIUserAbortError) && e.name !== 'AbortError') {
    throw e;
  }
}
out.aborted_after = seen;

try {
  await client.chat.completions.create({ model, messages, n: 2 });
  out.n2 = { status: 200 };
} catch (e) {
  out.n2 = { status: e.status, class: e.constructor.name, param: e.param, message: e.message };
}
try {
  await client.chat.completions.create({ model: 'no-such-model', messages });
  out.other_model = { status: 200 };
} catch (e) {
  out.other_model = { status: e.status, class: e.constructor.name };
}

console.log(JSON.stringify(out));
