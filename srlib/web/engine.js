// srlib's upscaler in plain JavaScript: the pipeline of `srlib upscale` (srlib/inference.py)
// written out for a browser, with no library. Studio-range YCbCr, the luma through the network,
// Cb and Cr enlarged with Lanczos-3, back to RGB rounded as srlib does. Networks arrive as the
// layer lists `srlib export` writes (srlib/web.py). Everything is float32 in HWC layout (the
// channels of one pixel side by side), so a convolution's innermost loop runs over contiguous
// memory. The same file runs in a Web Worker, on a page and under Node.js (the parity tests).
function srlibEngine() {
  "use strict";

  // --- FIR kernels and 1-D resampling, as srlib.resample (MATLAB imresize's construction) ---

  function sinc(t) {
    if (t === 0) return 1;
    const x = Math.PI * t;
    return Math.sin(x) / x;
  }
  const KERNELS = {
    bicubic: { support: 2, fn: (t) => {  // Keys, a = -0.5, written as MATLAB writes it
      const x = Math.abs(t), x2 = x * x, x3 = x2 * x;
      return (1.5 * x3 - 2.5 * x2 + 1) * (x <= 1) + (-0.5 * x3 + 2.5 * x2 - 4 * x + 2) * (x > 1 && x <= 2);
    } },
    lanczos3: { support: 3, fn: (t) => (Math.abs(t) < 3 ? sinc(t) * sinc(t / 3) : 0) },
    bilinear: { support: 1, fn: (t) => Math.max(1 - Math.abs(t), 0) },
  };

  function mirror(i, n) {
    const p = ((i % (2 * n)) + 2 * n) % (2 * n);
    return p < n ? p : 2 * n - 1 - p;
  }

  // Input indices (mirrored into range) and normalised weights of an integer upscaling.
  function contributions(inLen, scale, name) {
    const kernel = KERNELS[name];
    if (!kernel) throw new Error("unknown kernel " + name);
    const taps = Math.ceil(2 * kernel.support) + 2, outLen = inLen * scale;
    const index = new Int32Array(outLen * taps), weight = new Float32Array(outLen * taps);
    const w = new Float64Array(taps);
    for (let x = 0; x < outLen; x++) {
      const u = (x + 0.5) / scale - 0.5, first = Math.floor(u - kernel.support);
      let sum = 0;
      for (let t = 0; t < taps; t++) { w[t] = kernel.fn(u - (first + t)); sum += w[t]; }
      for (let t = 0; t < taps; t++) {
        index[x * taps + t] = mirror(first + t, inLen);
        weight[x * taps + t] = w[t] / sum;
      }
    }
    return { index, weight, taps };
  }

  // One plane (h, w) enlarged `scale` times: columns first, then rows, as srlib.resample.
  function resizePlane(src, h, w, scale, name) {
    const cols = contributions(w, scale, name), rows = contributions(h, scale, name);
    const W = w * scale, H = h * scale, wide = new Float32Array(h * W), out = new Float32Array(H * W);
    for (let y = 0; y < h; y++) {
      const line = y * w, at = y * W;
      for (let x = 0; x < W; x++) {
        let acc = 0;
        for (let t = 0, k = x * cols.taps; t < cols.taps; t++, k++) acc += cols.weight[k] * src[line + cols.index[k]];
        wide[at + x] = acc;
      }
    }
    for (let y = 0; y < H; y++) {
      const at = y * W, k0 = y * rows.taps;
      for (let t = 0; t < rows.taps; t++) {
        const wt = rows.weight[k0 + t], line = rows.index[k0 + t] * W;
        if (wt === 0) continue;
        for (let x = 0; x < W; x++) out[at + x] += wt * wide[line + x];
      }
    }
    return out;
  }

  // --- the layers ---

  // A convolution with its activation, generated for its shape: the output channels are
  // local variables, so the innermost loop is a row of multiply-adds V8 keeps in registers.
  const generated = new Map();
  function convKernel(cin, cout, k, act) {
    const key = [cin, cout, k, act].join(",");
    if (generated.has(key)) return generated.get(key);
    const lines = ["const wide = w + " + (k - 1) + "; let o = 0;",
                   "for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {"];
    for (let c = 0; c < cout; c++) lines.push("let a" + c + " = b[" + c + "];");
    lines.push("for (let ky = 0; ky < " + k + "; ky++) {",
               "let p = ((y + ky) * wide + x) * " + cin + ", q = ky * " + k * cin * cout + ";",
               "for (let j = 0; j < " + k * cin + "; j++, p++, q += " + cout + ") { const v = src[p];");
    for (let c = 0; c < cout; c++) lines.push("a" + c + " += wt[q + " + c + "] * v;");
    lines.push("}}");
    for (let c = 0; c < cout; c++) {
      const a = "a" + c;
      const value = act === "relu" ? a + " > 0 ? " + a + " : 0"
        : act === "tanh" ? "Math.tanh(" + a + ")"
        : act === "leaky" || act === "prelu" ? a + " >= 0 ? " + a + " : " + a + " * slope[" + (act === "leaky" ? 0 : c) + "]"
        : a;
      lines.push("dst[o++] = " + value + ";");
    }
    lines.push("}");
    const fn = new Function("src", "dst", "wt", "b", "slope", "h", "w", lines.join("\n"));
    generated.set(key, fn);
    return fn;
  }

  // The input with `pad` zeros around it: the convolutions' zero padding, as PyTorch's.
  function padded(x, pad) {
    if (pad === 0) return x.data;
    const W = x.w + 2 * pad, out = new Float32Array((x.h + 2 * pad) * W * x.c);
    for (let y = 0; y < x.h; y++) out.set(x.data.subarray(y * x.w * x.c, (y + 1) * x.w * x.c), ((y + pad) * W + pad) * x.c);
    return out;
  }

  function conv(x, layer) {
    const out = new Float32Array(x.h * x.w * layer.cout);
    const slope = layer.slope || new Float32Array(1);
    convKernel(layer.cin, layer.cout, layer.k, layer.act)(padded(x, layer.k >> 1), out, layer.weight, layer.bias,
                                                           slope, x.h, x.w);
    return { h: x.h, w: x.w, c: layer.cout, data: out };
  }

  // FSRCNN's transposed convolution (one output channel): each HR pixel gathers the LR pixels
  // whose strided 9x9 footprints cover it.
  function deconv(x, layer) {
    const s = layer.stride, k = layer.k, pad = layer.pad, c = x.c, H = x.h * s, W = x.w * s;
    const out = new Float32Array(H * W), src = x.data, wt = layer.weight, bias = layer.bias[0];
    for (let Y = 0; Y < H; Y++) {
      const i0 = Math.max(0, Math.ceil((Y + pad - k + 1) / s)), i1 = Math.min(x.h - 1, Math.floor((Y + pad) / s));
      for (let X = 0; X < W; X++) {
        const j0 = Math.max(0, Math.ceil((X + pad - k + 1) / s)), j1 = Math.min(x.w - 1, Math.floor((X + pad) / s));
        let acc = bias;
        for (let i = i0; i <= i1; i++) {
          const ky = Y + pad - i * s;
          for (let j = j0; j <= j1; j++) {
            const kx = X + pad - j * s, p = (i * x.w + j) * c, q = (ky * k + kx) * c;
            for (let ch = 0; ch < c; ch++) acc += src[p + ch] * wt[q + ch];
          }
        }
        out[Y * W + X] = acc;
      }
    }
    return { h: H, w: W, c: 1, data: out };
  }

  // Depth to space: channel i*s + j of LR pixel (y, x) becomes HR pixel (y*s + i, x*s + j).
  function shuffle(x, s) {
    const H = x.h * s, W = x.w * s, out = new Float32Array(H * W);
    for (let y = 0; y < x.h; y++) for (let i = 0; i < s; i++) {
      const row = (y * s + i) * W;
      for (let xx = 0; xx < x.w; xx++) {
        const p = (y * x.w + xx) * x.c + i * s;
        for (let j = 0; j < s; j++) out[row + xx * s + j] = x.data[p + j];
      }
    }
    return { h: H, w: W, c: 1, data: out };
  }

  // A network's forward pass on a luma plane (h, w) in [0, 1]: its layer list, run in order.
  // "skip" keeps the input (interpolated with `kernel`, if any) for the final "add".
  function forward(model, luma, h, w) {
    let x = { h, w, c: 1, data: luma }, kept = null;
    for (const layer of model.layers) {
      if (layer.op === "interpolate") x = { h: x.h * model.scale, w: x.w * model.scale, c: 1,
                                            data: resizePlane(x.data, x.h, x.w, model.scale, layer.kernel) };
      else if (layer.op === "skip") kept = layer.kernel ? resizePlane(x.data, x.h, x.w, model.scale, layer.kernel) : x.data;
      else if (layer.op === "conv") x = conv(x, layer);
      else if (layer.op === "deconv") x = deconv(x, layer);
      else if (layer.op === "shuffle") x = shuffle(x, model.scale);
      else if (layer.op === "add") { for (let i = 0; i < x.data.length; i++) x.data[i] += kept[i]; }
      else throw new Error("unknown layer " + layer.op);
    }
    return x.data;
  }

  // --- weights as `srlib export` writes them: float32 little-endian, base64 ---

  function floats(text) {
    const bytes = typeof atob === "function" ? Uint8Array.from(atob(text), (ch) => ch.charCodeAt(0))
                                             : new Uint8Array(Buffer.from(text, "base64"));
    return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  }

  function decode(model) {
    const layers = model.layers.map((layer) => {
      const out = Object.assign({}, layer);
      for (const key of ["weight", "bias", "slope"]) if (typeof layer[key] === "string") out[key] = floats(layer[key]);
      return out;
    });
    return Object.assign({}, model, { layers });
  }

  // --- the colour pipeline ---

  // Rows [top, top + rows) of the upscaled image, from `strip`: RGBA rows of the input,
  // `above` rows before `top`'s, read whole so the network and the chroma kernel see past
  // the rows kept (srlib.inference.upscale's strips). `colour`: the export's matrices.
  function upscaleStrip(model, colour, strip, width, height, above, rows) {
    const s = model.scale, n = width * height, f = colour.forward, off = colour.offset;
    const y = new Float32Array(n), cb = new Float32Array(n), cr = new Float32Array(n), alpha = new Float32Array(n);
    for (let i = 0, p = 0; i < n; i++, p += 4) {
      const r = strip[p], g = strip[p + 1], b = strip[p + 2];
      y[i] = (f[0] * r + f[1] * g + f[2] * b + off[0]) / 255;
      cb[i] = f[3] * r + f[4] * g + f[5] * b + off[1];
      cr[i] = f[6] * r + f[7] * g + f[8] * b + off[2];
      alpha[i] = strip[p + 3];
    }
    const luma = forward(model, y, height, width);
    const W = width * s, first = above * s, count = rows * s;
    const up = [resizePlane(cb, height, width, s, "lanczos3"), resizePlane(cr, height, width, s, "lanczos3")];
    const a = colour.inverse;  // rgb = a (255 luma - 16, cb - 128, cr - 128), rounded halves up
    const k = [0, 1, 2].map((c) => 0.5 - 16 * a[3 * c] - 128 * a[3 * c + 1] - 128 * a[3 * c + 2]);
    const opaque = alpha.every((v) => v === 255);
    const A = opaque ? null : resizePlane(alpha, height, width, s, "lanczos3");
    const out = new Uint8ClampedArray(count * W * 4);
    for (let i = 0, src = first * W; i < count * W; i++, src++) {
      const l = 255 * luma[src], u = up[0][src], v = up[1][src];
      for (let c = 0; c < 3; c++) {
        const value = a[3 * c] * l + k[c] + a[3 * c + 1] * u + a[3 * c + 2] * v;
        out[4 * i + c] = Math.floor(Math.min(Math.max(value, 0.5), 255.5));
      }
      out[4 * i + 3] = opaque ? 255 : Math.round(A[src]);
    }
    return out;
  }

  // An RGB(A) image enlarged by a plain FIR kernel, channel by channel (the page's baselines).
  function resizeRGBA(rgba, width, height, scale, name) {
    const n = width * height, W = width * scale, out = new Uint8ClampedArray(n * scale * scale * 4);
    const plane = new Float32Array(n);
    for (let c = 0; c < 4; c++) {
      for (let i = 0; i < n; i++) plane[i] = rgba[4 * i + c];
      const big = resizePlane(plane, height, width, scale, name);
      for (let i = 0; i < big.length; i++) out[4 * i + c] = Math.round(big[i]);
    }
    return out;
  }

  return { contributions, resizePlane, forward, decode, upscaleStrip, resizeRGBA };
}

if (typeof module !== "undefined") module.exports = srlibEngine();
