// oneDNN's float32 convolutions as XLA:CPU custom calls (the XLA FFI): NHWC activations, HWIO
// kernels, any strides and explicit paddings. Three handlers, one per pass: forward, input
// gradient and kernel gradient. Compiled and registered by onednn_conv.py.
//
// Primitives are created once per shape (oneDNN generates their code at creation) and kept.

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "oneapi/dnnl/dnnl.hpp"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;
using dnnl::memory;
using Dims = memory::dims;
using Tag = memory::format_tag;

namespace {

enum Pass : int64_t { kForward, kInputGrad, kKernelGrad };

struct Geometry {
  Dims x, w, y, strides, pad_l, pad_r;  // oneDNN's logical orders: NCHW, OIHW, NCHW
};

dnnl::engine& Engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

memory::desc Desc(const Dims& d, Tag tag) { return memory::desc(d, memory::data_type::f32, tag); }

struct Primitive {
  dnnl::primitive run;
  memory::desc kernel;  // the kernel's (or kernel gradient's) layout the primitive wants
  memory::desc scratch;
};

Primitive Create(Pass pass, const Geometry& g) {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  auto x = Desc(g.x, Tag::nhwc), y = Desc(g.y, Tag::nhwc), any = Desc(g.w, Tag::any);
  const auto algo = dnnl::algorithm::convolution_direct;
  dnnl::convolution_forward::primitive_desc fwd(Engine(), dnnl::prop_kind::forward_training, algo, x, any, y,
                                                g.strides, g.pad_l, g.pad_r, attr);
  if (pass == kForward) return {dnnl::convolution_forward(fwd), fwd.weights_desc(), fwd.scratchpad_desc()};
  if (pass == kInputGrad) {
    dnnl::convolution_backward_data::primitive_desc bwd(Engine(), algo, x, any, y, g.strides, g.pad_l, g.pad_r, fwd,
                                                        attr);
    return {dnnl::convolution_backward_data(bwd), bwd.weights_desc(), bwd.scratchpad_desc()};
  }
  dnnl::convolution_backward_weights::primitive_desc bwd(Engine(), algo, x, any, y, g.strides, g.pad_l, g.pad_r,
                                                         fwd, attr);
  return {dnnl::convolution_backward_weights(bwd), bwd.diff_weights_desc(), bwd.scratchpad_desc()};
}

const Primitive& Cached(Pass pass, const Geometry& g) {
  static std::mutex mutex;
  static std::map<std::vector<int64_t>, std::unique_ptr<Primitive>> cache;
  std::vector<int64_t> key{pass};
  for (const Dims* d : {&g.x, &g.w, &g.strides, &g.pad_l, &g.pad_r}) key.insert(key.end(), d->begin(), d->end());
  std::lock_guard<std::mutex> lock(mutex);
  auto& slot = cache[key];
  if (!slot) slot = std::make_unique<Primitive>(Create(pass, g));
  return *slot;
}

// NHWC and HWIO dimensions of the buffers, in oneDNN's logical order.
Dims Activation(ffi::Span<const int64_t> d) { return {d[0], d[3], d[1], d[2]}; }
Dims Kernel(ffi::Span<const int64_t> d) { return {d[3], d[2], d[0], d[1]}; }

ffi::Error Run(Pass pass, const Geometry& g, float* x, float* w, float* y) {
  try {
    const Primitive& p = Cached(pass, g);
    // XLA runs independent thunks at once (a layer's two gradients, say); two oneDNN calls
    // side by side would each start a full team of OpenMP threads on the same cores.
    static std::mutex one_at_a_time;
    std::lock_guard<std::mutex> lock(one_at_a_time);
    dnnl::stream stream(Engine());
    memory hwio(Desc(g.w, Tag::hwio), Engine(), w);
    memory kernel = hwio;
    const bool reordered = p.kernel != hwio.get_desc();
    if (reordered) {
      kernel = memory(p.kernel, Engine());
      if (pass != kKernelGrad) dnnl::reorder(hwio, kernel).execute(stream, hwio, kernel);
    }
    memory scratch(p.scratch, Engine());
    memory xm(Desc(g.x, Tag::nhwc), Engine(), x), ym(Desc(g.y, Tag::nhwc), Engine(), y);
    if (pass == kForward) {
      p.run.execute(stream, {{DNNL_ARG_SRC, xm}, {DNNL_ARG_WEIGHTS, kernel}, {DNNL_ARG_DST, ym},
                             {DNNL_ARG_SCRATCHPAD, scratch}});
    } else if (pass == kInputGrad) {
      p.run.execute(stream, {{DNNL_ARG_DIFF_SRC, xm}, {DNNL_ARG_WEIGHTS, kernel}, {DNNL_ARG_DIFF_DST, ym},
                             {DNNL_ARG_SCRATCHPAD, scratch}});
    } else {
      p.run.execute(stream, {{DNNL_ARG_SRC, xm}, {DNNL_ARG_DIFF_WEIGHTS, kernel}, {DNNL_ARG_DIFF_DST, ym},
                             {DNNL_ARG_SCRATCHPAD, scratch}});
      if (reordered) dnnl::reorder(kernel, hwio).execute(stream, kernel, hwio);
    }
    stream.wait();
  } catch (const dnnl::error& e) {
    return ffi::Error(ffi::ErrorCode::kInternal, e.what());
  }
  return ffi::Error::Success();
}

Geometry Make(Dims x, Dims w, Dims y, int64_t sh, int64_t sw, int64_t pt, int64_t pb, int64_t pl, int64_t pr) {
  return {x, w, y, {sh, sw}, {pt, pl}, {pb, pr}};
}

using F32 = ffi::Buffer<ffi::F32, 4>;
using OutF32 = ffi::ResultBuffer<ffi::F32, 4>;

ffi::Error Forward(F32 x, F32 w, OutF32 y, int64_t sh, int64_t sw, int64_t pt, int64_t pb, int64_t pl, int64_t pr) {
  auto g = Make(Activation(x.dimensions()), Kernel(w.dimensions()), Activation(y->dimensions()), sh, sw, pt, pb, pl, pr);
  return Run(kForward, g, x.typed_data(), w.typed_data(), y->typed_data());
}

ffi::Error InputGrad(F32 dy, F32 w, OutF32 dx, int64_t sh, int64_t sw, int64_t pt, int64_t pb, int64_t pl,
                     int64_t pr) {
  auto g =
      Make(Activation(dx->dimensions()), Kernel(w.dimensions()), Activation(dy.dimensions()), sh, sw, pt, pb, pl, pr);
  return Run(kInputGrad, g, dx->typed_data(), w.typed_data(), dy.typed_data());
}

ffi::Error KernelGrad(F32 x, F32 dy, OutF32 dw, int64_t sh, int64_t sw, int64_t pt, int64_t pb, int64_t pl,
                      int64_t pr) {
  auto g =
      Make(Activation(x.dimensions()), Kernel(dw->dimensions()), Activation(dy.dimensions()), sh, sw, pt, pb, pl, pr);
  return Run(kKernelGrad, g, x.typed_data(), dw->typed_data(), dy.typed_data());
}

template <typename B>
auto Geometric(B b) {
  return std::move(b)
      .template Attr<int64_t>("stride_h")
      .template Attr<int64_t>("stride_w")
      .template Attr<int64_t>("pad_top")
      .template Attr<int64_t>("pad_bottom")
      .template Attr<int64_t>("pad_left")
      .template Attr<int64_t>("pad_right");
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(OnednnConvForward, Forward,
                              Geometric(ffi::Ffi::Bind().Arg<F32>().Arg<F32>().Ret<ffi::Buffer<ffi::F32, 4>>()));
XLA_FFI_DEFINE_HANDLER_SYMBOL(OnednnConvInputGrad, InputGrad,
                              Geometric(ffi::Ffi::Bind().Arg<F32>().Arg<F32>().Ret<ffi::Buffer<ffi::F32, 4>>()));
XLA_FFI_DEFINE_HANDLER_SYMBOL(OnednnConvKernelGrad, KernelGrad,
                              Geometric(ffi::Ffi::Bind().Arg<F32>().Arg<F32>().Ret<ffi::Buffer<ffi::F32, 4>>()));
