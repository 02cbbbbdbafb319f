// The page's interface: read an image, run srlibEngine in Web Workers strip by strip, show the
// result beside bicubic and Lanczos-3 under a slider. Depends on engine.js (srlibEngine), the
// weights in <script class="srlib-weights"> and SRLIB_MAX_OUTPUT_PIXELS, all in this block.
(function () {
  "use strict";
  const root = document.currentScript.parentNode.querySelector(".srlib-app:not([data-ready])") ||
               document.querySelector(".srlib-app:not([data-ready])");
  root.setAttribute("data-ready", "");
  const $ = (selector) => root.querySelector(selector);
  const weights = JSON.parse(document.querySelector("script.srlib-weights").textContent);
  const MAX_OUTPUT = SRLIB_MAX_OUTPUT_PIXELS, MAX_INPUT = MAX_OUTPUT / 4;
  const STRIP_VALUES = 1 << 24;  // float32 values of a strip's widest activation: 64 MB
  const status = $(".srlib-status"), progress = $(".srlib-progress"), go = $(".srlib-go"), cancel = $(".srlib-cancel");
  let source = null, pool = null, run = 0, shown = {}, downloadUrl = null;

  function say(text, error) {
    status.textContent = text;
    status.classList.toggle("srlib-error", !!error);
  }

  // The network menu, by scale, in the order srlib lists them (its default first).
  const byName = {};
  for (const model of weights.models) byName[model.name] = model;
  for (const scale of [...new Set(weights.models.map((m) => m.scale))].sort()) {
    const group = document.createElement("optgroup");
    group.label = "\u00d7" + scale;
    for (const m of weights.models.filter((m) => m.scale === scale)) {
      const option = new Option(m.model.toUpperCase().replace("SPVDSR", "SP-VDSR") + " \u00d7" + scale + "  (" + m.name +
                                ", Set5 " + m.psnr_set5.toFixed(2) + " dB)", m.name);
      option.title = m.training_data;
      group.appendChild(option);
    }
    $(".srlib-model").appendChild(group);
  }

  // --- workers: the engine and the weights, once per worker ---

  function startPool() {
    const code = "const E = (" + srlibEngine.toString() + ")(); const models = {};\n" +
      "onmessage = (e) => { const m = e.data;\n" +
      "  if (m.type === 'weights') { for (const x of m.models) models[x.name] = E.decode(x); return; }\n" +
      "  try { const model = models[m.name], s = model.scale, row = m.width * s * 4, out = {};\n" +
      "    if (m.type === 'network') out.network = E.upscaleStrip(model, m.colour, m.rgba, m.width, m.height, m.above, m.rows);\n" +
      "    else for (const [key, kernel] of [['bicubic', 'bicubic'], ['lanczos', 'lanczos3']])\n" +
      "      out[key] = E.resizeRGBA(m.rgba, m.width, m.height, s, kernel).slice(m.above * s * row, (m.above + m.rows) * s * row);\n" +
      "    postMessage(Object.assign({ id: m.id }, out), Object.values(out).map((a) => a.buffer));\n" +
      "  } catch (err) { postMessage({ id: m.id, error: String(err && err.message || err) }); } };\n";
    const url = URL.createObjectURL(new Blob([code], { type: "text/javascript" }));
    const count = Math.max(1, Math.min(8, navigator.hardwareConcurrency || 2));
    const workers = [];
    for (let i = 0; i < count; i++) {
      const worker = new Worker(url);
      worker.postMessage({ type: "weights", models: weights.models });
      workers.push(worker);
    }
    return workers;
  }

  function stopPool() {
    if (pool) for (const worker of pool) worker.terminate();
    pool = null;
  }

  // --- reading the image ---

  function loadImage(file) {
    return new Promise((resolve, reject) => {
      const url = URL.createObjectURL(file), img = new Image();
      img.onload = () => resolve({ img, url });
      img.onerror = () => { URL.revokeObjectURL(url); reject(new Error("not an image this browser can read")); };
      img.src = url;
    });
  }

  async function frameCount(file) {
    if (typeof ImageDecoder === "undefined" || !file.type) return 1;
    try {
      const decoder = new ImageDecoder({ data: await file.arrayBuffer(), type: file.type });
      await decoder.tracks.ready;
      const track = decoder.tracks.selectedTrack;
      const frames = track && track.animated ? track.frameCount : 1;
      decoder.close();
      return frames;
    } catch (err) {
      return 1;  // a format ImageDecoder does not know: the <img> decoding decides
    }
  }

  async function choose(file) {
    if (root.getAttribute("data-state") === "working") {  // a new image stops the run in progress
      stopPool(); run++;
      cancel.hidden = true; progress.hidden = true;
    }
    source = null;
    go.disabled = true;
    $(".srlib-result").hidden = true;
    root.setAttribute("data-state", "reading");
    const name = file.name || "image";
    try {
      const { img, url } = await loadImage(file);
      URL.revokeObjectURL(url);
      const width = img.naturalWidth, height = img.naturalHeight;
      if (!width || !height) throw new Error("not an image this browser can read");
      if (width * height > MAX_INPUT) {
        throw new Error(width + "\u00d7" + height + " is too large for this page (at most " + (MAX_INPUT / 1e6).toFixed(0) +
                        " megapixels, so that \u00d72 stays within " + (MAX_OUTPUT / 1e6).toFixed(0) +
                        "); `srlib upscale` on the command line has no such limit");
      }
      if (Math.min(width, height) < 8) throw new Error(width + "\u00d7" + height + " is too small: both sides must be at least 8 pixels");
      const frames = await frameCount(file);
      if (frames > 1) throw new Error("an animation of " + frames + " frames: this page enlarges still images only");
      const bitmap = await createImageBitmap(img, { colorSpaceConversion: "none", premultiplyAlpha: "none" });
      const canvas = document.createElement("canvas");
      canvas.width = width; canvas.height = height;
      const context = canvas.getContext("2d", { willReadFrequently: true });
      context.drawImage(bitmap, 0, 0);
      source = { name, width, height, rgba: context.getImageData(0, 0, width, height).data };
      go.disabled = false;
      root.setAttribute("data-state", "ready");
      say(name + ": " + width + "\u00d7" + height + ". Pick a network and press Upscale.");
    } catch (err) {
      root.setAttribute("data-state", "error");
      say("Cannot use " + name + ": " + err.message + ".", true);
    }
  }

  // --- upscaling, strip by strip over the workers ---

  function strips(model, width, height) {
    const widest = Math.max(1, Math.floor(STRIP_VALUES / (model.widest * width)));
    const count = Math.max(Math.ceil(height / widest), 2 * pool.length);
    const rows = Math.max(1, Math.ceil(height / count)), out = [];
    for (let top = 0; top < height; top += rows) out.push({ top, rows: Math.min(rows, height - top) });
    return out;
  }

  // The network's strips first (the result is shown as soon as they are in), then bicubic and
  // Lanczos-3 for the comparison; each strip read with `halo` rows more on either side.
  function upscale() {
    const model = byName[$(".srlib-model").value], s = model.scale;
    const W = source.width * s, H = source.height * s;
    if (W * H > MAX_OUTPUT) {
      say("\u00d7" + s + " would make " + W + "\u00d7" + H + " = " + (W * H / 1e6).toFixed(1) + " megapixels, more than this page's " +
          (MAX_OUTPUT / 1e6).toFixed(0) + ": choose a smaller factor or image, or use `srlib upscale`.", true);
      root.setAttribute("data-state", "error");
      return;
    }
    pool = pool || startPool();
    const src = source, id = ++run, started = performance.now(), width = src.width, height = src.height;
    const out = { network: new ImageData(W, H), bicubic: new ImageData(W, H), lanczos: new ImageData(W, H) };
    const parts = strips(model, width, height);
    const todo = parts.map((p) => Object.assign({ type: "network" }, p)).concat(parts.map((p) => Object.assign({ type: "baselines" }, p)));
    let done = 0, next = 0;
    go.disabled = true; cancel.hidden = false; progress.hidden = false; progress.value = 0;
    root.setAttribute("data-state", "working");
    root.removeAttribute("data-baselines");
    say("Upscaling \u00d7" + s + " with " + model.name + "\u2026");
    const send = (worker) => {
      if (next >= todo.length) return;
      const task = todo[next++];
      const first = Math.max(0, task.top - model.halo), last = Math.min(height, task.top + task.rows + model.halo);
      const rgba = src.rgba.slice(first * width * 4, last * width * 4);
      worker.onmessage = (e) => receive(worker, task, e.data);
      worker.postMessage({ type: task.type, id, name: model.name, colour: weights.colour, rgba, width,
                           height: last - first, above: task.top - first, rows: task.rows }, [rgba.buffer]);
    };
    const receive = (worker, task, reply) => {
      if (id !== run) return;
      if (reply.error) { fail(reply.error); return; }
      const at = task.top * s * W * 4;
      for (const key of ["network", "bicubic", "lanczos"]) if (reply[key]) out[key].data.set(reply[key], at);
      done++;
      if (done <= parts.length) progress.value = done / parts.length;
      if (done === parts.length) finish(model, src, out, started);
      if (done === todo.length) compare(model, out);
      else send(worker);
    };
    for (const worker of pool) send(worker);
  }

  function fail(message) {
    stopPool();
    run++;
    go.disabled = !source; cancel.hidden = true; progress.hidden = true;
    root.setAttribute("data-state", "error");
    say("The upscaling failed: " + message, true);
  }

  function finish(model, src, out, started) {
    cancel.hidden = true; progress.hidden = true;
    shown = { [model.name]: out.network };
    menus(model.name, model.name);
    const canvas = document.createElement("canvas");
    canvas.width = out.network.width; canvas.height = out.network.height;
    canvas.getContext("2d").putImageData(out.network, 0, 0);
    canvas.toBlob((blob) => {
      if (downloadUrl) URL.revokeObjectURL(downloadUrl);
      downloadUrl = URL.createObjectURL(blob);
      const link = $(".srlib-download");
      link.href = downloadUrl;
      link.download = src.name.replace(/\.[^.]*$/, "") + "-x" + model.scale + "-" + model.name + ".png";
    }, "image/png");
    $(".srlib-result").hidden = false;
    const seconds = (performance.now() - started) / 1000;  // from the click to the result on screen
    root.setAttribute("data-seconds", seconds.toFixed(3));
    root.setAttribute("data-state", "done");
    say(src.width + "\u00d7" + src.height + " \u2192 " + out.network.width + "\u00d7" + out.network.height + " with " +
        model.name + " in " + seconds.toFixed(2) + " s. Drag the divider to compare.");
  }

  function compare(model, out) {
    go.disabled = false;
    shown = { [model.name]: out.network, "Lanczos-3": out.lanczos, "bicubic": out.bicubic };
    menus("bicubic", model.name);
    root.setAttribute("data-baselines", "ready");
  }

  function menus(left, right) {
    for (const [select, value] of [[$(".srlib-left"), left], [$(".srlib-right"), right]]) {
      select.innerHTML = "";
      for (const name of Object.keys(shown)) select.appendChild(new Option(name, name));
      select.value = value;
    }
    draw();
  }

  // --- the comparison ---

  function draw() {
    for (const [side, cls] of [[".srlib-left", ".srlib-over"], [".srlib-right", ".srlib-under"]]) {
      const image = shown[$(side).value], canvas = $(cls);
      if (!image) continue;
      canvas.width = image.width; canvas.height = image.height;
      canvas.getContext("2d").putImageData(image, 0, 0);
    }
    zoom();
    divide();
  }

  function zoom() {
    const factor = Number($(".srlib-zoom").value), stack = $(".srlib-stack"), width = $(".srlib-under").width;
    stack.style.width = factor ? width * factor / (window.devicePixelRatio || 1) + "px" : "100%";
  }

  function divide() {
    const at = Number($(".srlib-handle").value);
    $(".srlib-over").style.clipPath = "inset(0 " + (100 - at) + "% 0 0)";
    $(".srlib-bar").style.left = at + "%";
  }

  // --- wiring ---

  $(".srlib-file").addEventListener("change", (e) => { if (e.target.files.length) choose(e.target.files[0]); });
  const drop = $(".srlib-drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("srlib-hover"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("srlib-hover"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("srlib-hover");
    if (e.dataTransfer.files.length) choose(e.dataTransfer.files[0]);
  });
  go.addEventListener("click", () => { if (source) upscale(); });
  cancel.addEventListener("click", () => {
    stopPool(); run++;
    go.disabled = !source; cancel.hidden = true; progress.hidden = true;
    root.setAttribute("data-state", "ready");
    say("Cancelled.");
  });
  $(".srlib-left").addEventListener("change", draw);
  $(".srlib-right").addEventListener("change", draw);
  $(".srlib-zoom").addEventListener("change", zoom);
  $(".srlib-handle").addEventListener("input", divide);
})();
