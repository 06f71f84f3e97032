// Loads the web client (web.js + web_bg.wasm from `cargo xtask web`) and
// shows how much of the .wasm has arrived. Kept out of index.html because the
// relay's Content-Security-Policy allows no inline scripts.
import init, { run } from "./web.js";

const bar = document.getElementById("progress");
const text = document.getElementById("progress-text");
// The uncompressed size, written in by `cargo xtask web`; the browser
// reports decompressed bytes, so this is what progress is measured against.
const WASM_BYTES = Number("__WASM_BYTES__") || 0;

function showError(message) {
  const loading = document.getElementById("loading");
  loading.replaceChildren();
  const div = document.createElement("div");
  div.className = "error";
  div.textContent =
    "このブラウザーでは起動できませんでした。ページを再読み込みするか、別のブラウザーをお試しください。" +
    " / The client could not start in this browser. Reload the page or try another browser. (" +
    message + ")";
  loading.append(div);
}

async function fetchWithProgress(url) {
  const response = await fetch(url);
  if (!response.ok) {
    throw new Error(url + ": HTTP " + response.status);
  }
  if (!response.body || !WASM_BYTES) {
    return response;
  }
  let received = 0;
  const counted = response.body.pipeThrough(new TransformStream({
    transform(chunk, controller) {
      received += chunk.byteLength;
      const part = Math.min(received / WASM_BYTES, 1);
      bar.value = part;
      text.textContent = Math.round(part * 100) + "%";
      controller.enqueue(chunk);
    },
  }));
  return new Response(counted, { headers: { "Content-Type": "application/wasm" } });
}

async function fetchBytes(url) {
  const response = await fetch(url);
  if (!response.ok) {
    throw new Error(url + ": HTTP " + response.status);
  }
  return new Uint8Array(await response.arrayBuffer());
}

if (typeof WebAssembly !== "object") {
  showError("WebAssembly");
} else {
  // The UI's font downloads beside the module, not inside it.
  const uiFont = fetchBytes(new URL("NotoSansJP-ui.otf", import.meta.url));
  init({ module_or_path: fetchWithProgress(new URL("web_bg.wasm", import.meta.url)) })
    .then(async () => run(await uiFont))
    .catch((e) => showError(String(e)));
}
