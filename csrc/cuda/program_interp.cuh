// Device-side interpreter of op programs (autobert_ext/program.py is the contract: opcode
// numbers, SSA registers, encode()). Zero compile time for a new program: the host packs the
// bytecode into a kernel parameter (constant bank, read uniformly by a warp) and every thread
// evaluates it per element on a small register file in local memory.
//
// Packing (host): dead instructions are dropped and SSA registers are mapped to reusable
// slots (linear scan over last uses), so the per-thread register file stays small.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "cuda/common.cuh"

namespace autobert::cuda {

constexpr int kMaxInstrs = 128;  // live instructions per program after dead-code removal
constexpr int kMaxSlots = 48;    // simultaneously live values (local-memory floats per element)
constexpr int kMaxIO = 8;        // inputs and outputs per program
constexpr int kNumOpcodes = 34;  // OPCODES in autobert_ext/program.py (append-only)

enum Op : uint8_t {
  kCopy, kConst, kNeg, kAbs, kSquare, kMulc, kAddc, kLogsigmoid, kSoftsign, kSqrt, kLog, kExp,
  kSigmoid, kTanh, kRelu, kGelu, kSoftplus, kAdd, kSub, kMul, kMax, kMin, kDiv, kRecip, kRsqrt,
  kSign, kSignp, kGt, kEq, kGtc, kLtc, kDgelu, kExpRaw, kFma
};
constexpr int kArity[kNumOpcodes] = {1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
                                     2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 2, 2, 1, 1, 1, 1, 2};

struct Instr {
  uint8_t op, dst, a, b;  // dst / a / b are slots
  float imm;
};

// A packed program: inputs arrive in slots 0..n_inputs-1; outputs are read from out_slot.
struct DeviceProgram {
  int32_t n_inputs;
  int32_t n_instrs;
  int32_t n_outputs;
  uint32_t input_live;  // bit i: input i is read (dead inputs are not loaded)
  uint8_t out_slot[kMaxIO];
  Instr instrs[kMaxInstrs];
};

// Host view of autobert_ext.program.encode(): ints [n_in, n_instr, n_out, (op, dst, a, b)*, outs*]
// and one immediate per instruction (the custom-op schema's int[] / float[]).
struct ProgramRef {
  const int64_t* ints;
  int64_t n_ints;
  const double* imms;
  int64_t n_imms;
};

// Validates and packs `ref` (same rules as Program.validate). Returns "" or an error message.
inline std::string pack_program(const ProgramRef& ref, DeviceProgram* out) {
  if (ref.n_ints < 3) return "op program: encoding too short";
  const int64_t n_in = ref.ints[0], n_ins = ref.ints[1], n_out = ref.ints[2];
  if (n_in < 0 || n_ins < 0 || n_out < 0 || ref.n_ints != 3 + 4 * n_ins + n_out || ref.n_imms != n_ins)
    return "op program: encoding length does not match its header";
  if (n_in > kMaxIO || n_out > kMaxIO)
    return "op program: at most " + std::to_string(kMaxIO) + " inputs and outputs are supported";
  const int64_t* body = ref.ints + 3;
  const int64_t* outs = body + 4 * n_ins;
  const int64_t n_regs = n_in + n_ins;
  for (int64_t i = 0; i < n_ins; ++i) {
    const int64_t op = body[4 * i], dst = body[4 * i + 1];
    if (op < 0 || op >= kNumOpcodes) return "op program: instruction " + std::to_string(i) + " has unknown opcode";
    if (dst != n_in + i) return "op program: instruction " + std::to_string(i) + " breaks SSA numbering";
    for (int s = 0; s < kArity[op]; ++s) {
      const int64_t src = body[4 * i + 2 + s];
      if (src < 0 || src >= dst) return "op program: instruction " + std::to_string(i) + " reads an undefined register";
    }
  }
  for (int64_t j = 0; j < n_out; ++j)
    if (outs[j] < 0 || outs[j] >= n_regs) return "op program: output register out of range";

  // Liveness: registers some output needs; last_use = index of the last reading instruction
  // (n_ins for outputs, so their slots survive to the end).
  std::vector<char> live(n_regs, 0);
  std::vector<int64_t> last_use(n_regs, -1);
  for (int64_t j = 0; j < n_out; ++j) live[outs[j]] = 1, last_use[outs[j]] = n_ins;
  for (int64_t i = n_ins - 1; i >= 0; --i) {
    if (!live[n_in + i]) continue;
    for (int s = 0; s < kArity[body[4 * i]]; ++s) {
      const int64_t src = body[4 * i + 2 + s];
      live[src] = 1;
      if (last_use[src] < i) last_use[src] = i;
    }
  }
  // Linear scan: inputs own slots 0..n_in-1; a slot is free again after its value's last use.
  std::vector<int> slot(n_regs, -1);
  std::vector<int> free_slots;
  int n_slots = static_cast<int>(n_in);
  for (int64_t r = 0; r < n_in; ++r) slot[r] = static_cast<int>(r);
  out->n_inputs = static_cast<int32_t>(n_in);
  out->n_outputs = static_cast<int32_t>(n_out);
  out->input_live = 0;
  for (int64_t r = 0; r < n_in; ++r) {
    if (live[r]) out->input_live |= 1u << r;
    else free_slots.push_back(static_cast<int>(r));  // a dead input's slot is free at once
  }
  int n_packed = 0;
  for (int64_t i = 0; i < n_ins; ++i) {
    const int64_t dst = n_in + i;
    if (!live[dst]) continue;
    if (n_packed == kMaxInstrs)
      return "op program: more than " + std::to_string(kMaxInstrs) + " live instructions";
    const int64_t op = body[4 * i];
    Instr ins{static_cast<uint8_t>(op), 0, 0, 0, static_cast<float>(ref.imms[i])};
    int srcs[2] = {0, 0};
    for (int s = 0; s < kArity[op]; ++s) srcs[s] = slot[body[4 * i + 2 + s]];
    // Free operands whose last use is here before choosing dst: dst may reuse their slot
    // (the interpreter reads the operands of an element before writing its result).
    for (int s = 0; s < kArity[op]; ++s) {
      const int64_t src = body[4 * i + 2 + s];
      if (last_use[src] == i && !(s == 1 && body[4 * i + 2] == src)) free_slots.push_back(slot[src]);
    }
    int d;
    if (!free_slots.empty()) {
      d = free_slots.back();
      free_slots.pop_back();
    } else {
      if (n_slots == kMaxSlots)
        return "op program: more than " + std::to_string(kMaxSlots) + " values live at once";
      d = n_slots++;
    }
    slot[dst] = d;
    ins.dst = static_cast<uint8_t>(d);
    ins.a = static_cast<uint8_t>(srcs[0]);
    ins.b = static_cast<uint8_t>(srcs[1]);
    out->instrs[n_packed++] = ins;
  }
  out->n_instrs = n_packed;
  for (int64_t j = 0; j < n_out; ++j) out->out_slot[j] = static_cast<uint8_t>(slot[outs[j]]);
  return "";
}

// Identity program on `n_in` inputs returning input `which` (for absent PRE/POST programs).
inline DeviceProgram identity_program(int n_in, int which) {
  DeviceProgram p{};
  p.n_inputs = n_in;
  p.n_instrs = 0;
  p.n_outputs = 1;
  p.input_live = 1u << which;
  p.out_slot[0] = static_cast<uint8_t>(which);
  return p;
}

// The evaluator is __host__ __device__ so a host harness can check it (and pack_program)
// against the Python reference without a GPU (tests/ext/test_cuda_sources.py).
#define AB_HD __host__ __device__ __forceinline__

namespace detail {
AB_HD float sign_of(float x) { return x > 0.f ? 1.f : (x < 0.f ? -1.f : x * 0.f); }
AB_HD float signp_of(float x) { return x >= 0.f ? 1.f : -1.f; }
AB_HD float nan_max(float a, float b) { return (a != a || b != b) ? a + b : fmaxf(a, b); }
AB_HD float nan_min(float a, float b) { return (a != a || b != b) ? a + b : fminf(a, b); }
AB_HD float cdf(float x) { return 0.5f * erfcf(-x * 0.70710678118654752f); }  // no cancellation for x << 0
AB_HD float rsqrt_of(float x) {
#ifdef __CUDA_ARCH__
  return rsqrtf(x);
#else
  return 1.f / sqrtf(x);
#endif
}
}  // namespace detail

// Runs `p` on E elements at once (ILP; one decode per instruction for E elements).
// r[slot][e]: slots 0..n_inputs-1 hold the inputs on entry.
template <int E>
AB_HD void run_program(const DeviceProgram& p, float (&r)[kMaxSlots][E]) {
  using namespace detail;
  for (int i = 0; i < p.n_instrs; ++i) {
    const Instr ins = p.instrs[i];
    const int d = ins.dst, ia = ins.a, ib = ins.b;
    const float c = ins.imm;
#define AB_UNARY(expr)                          \
  _Pragma("unroll") for (int e = 0; e < E; ++e) { \
    const float x = r[ia][e];                   \
    r[d][e] = (expr);                           \
  }                                             \
  break;
#define AB_BINARY(expr)                         \
  _Pragma("unroll") for (int e = 0; e < E; ++e) { \
    const float a = r[ia][e], b = r[ib][e];     \
    r[d][e] = (expr);                           \
  }                                             \
  break;
    switch (ins.op) {  // uniform across the warp: no divergence
      case kCopy: AB_UNARY(x)
      case kConst:
        _Pragma("unroll") for (int e = 0; e < E; ++e) r[d][e] = c;
        break;
      case kNeg: AB_UNARY(-x)
      case kAbs: AB_UNARY(fabsf(x))
      case kSquare: AB_UNARY(x * x)
      case kMulc: AB_UNARY(x * c)
      case kAddc: AB_UNARY(x + c)
      case kLogsigmoid: AB_UNARY((x < 0.f ? x : 0.f) - log1pf(precise_expf(-fabsf(x))))
      case kSoftsign: AB_UNARY(x / (1.f + fabsf(x)))
      case kSqrt: AB_UNARY(sign_of(x) * (sqrtf(fabsf(x) + 1e-6f) - 1e-3f))
      case kLog: AB_UNARY(sign_of(x) * log1pf(fabsf(x)))
      case kExp: AB_UNARY(precise_expf(x > 20.f ? 20.f : x))  // a NaN fails the test: stays NaN
      case kSigmoid: AB_UNARY(1.f / (1.f + precise_expf(-x)))
      case kTanh: AB_UNARY(tanhf(x))
      case kRelu: AB_UNARY(x > 0.f ? x : x * 0.f)
      case kGelu: AB_UNARY(x * cdf(x))
      case kSoftplus: AB_UNARY(x > 20.f ? x : log1pf(precise_expf(x)))
      case kAdd: AB_BINARY(a + b)
      case kSub: AB_BINARY(a - b)
      case kMul: AB_BINARY(a * b)
      case kMax: AB_BINARY(nan_max(a, b))
      case kMin: AB_BINARY(nan_min(a, b))
      case kDiv: AB_BINARY(a / (signp_of(b) * (fabsf(b) < 1e-6f ? 1e-6f : fabsf(b))))
      case kRecip: AB_UNARY(1.f / x)
      case kRsqrt: AB_UNARY(rsqrt_of(x))
      case kSign: AB_UNARY(sign_of(x))
      case kSignp: AB_UNARY(signp_of(x))
      case kGt: AB_BINARY(a > b ? 1.f : 0.f)
      case kEq: AB_BINARY(a == b ? 1.f : 0.f)
      case kGtc: AB_UNARY(x > c ? 1.f : 0.f)
      case kLtc: AB_UNARY(x < c ? 1.f : 0.f)
      case kDgelu: AB_UNARY(cdf(x) + x * precise_expf(-0.5f * x * x) * 0.39894228040143268f)
      case kExpRaw: AB_UNARY(precise_expf(x))
      case kFma: AB_BINARY(a * b + c)
      default: break;
    }
#undef AB_UNARY
#undef AB_BINARY
  }
}

}  // namespace autobert::cuda

#undef AB_HD
