// Picks the widest ATen vector ISA the compiler is allowed to emit, then includes the ATen vector
// headers. Include this FIRST in every kernel translation unit (never from a binding file): the ATen
// headers only use AVX2/AVX-512 when CPU_CAPABILITY_* is defined before their first inclusion, and
// the inline namespace (at::vec::AVX512 / AVX2 / DEFAULT) keeps this choice ODR-safe.
#pragma once

#if !defined(CPU_CAPABILITY)
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512DQ__) && defined(__AVX512VL__)
#define CPU_CAPABILITY AVX512
#define CPU_CAPABILITY_AVX512
#elif defined(__AVX2__) && defined(__FMA__)
#define CPU_CAPABILITY AVX2
#define CPU_CAPABILITY_AVX2
#else
#define CPU_CAPABILITY DEFAULT
#endif
#endif

#include <ATen/cpu/vec/vec.h>
#include <ATen/cpu/vec/functional.h>
