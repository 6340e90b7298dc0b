// Rotary position embedding, in place on x = [R][heads][headDim] floats. Pair i < rotDim/2 of a head turns by
// theta = positions[r] * base^(-2i/rotDim) / factors[i] (factors: Llama 3 frequency scaling; null = all 1).
// Normal layout rotates elements (2i, 2i+1); NeoX layout rotates (i, i + rotDim/2). Elements from rotDim on
// are left alone. Launch: block (256), grid (ceil(R * heads * rotDim/2 / 256)).
#include "common.cuh"

extern "C" __global__ void __launch_bounds__(256)
    rope(float* __restrict__ x, const int* __restrict__ positions, const float* __restrict__ factors, int R, int heads,
         int headDim, int rotDim, float base, int neox) {
    int half = rotDim / 2;
    long long t = (long long) blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= (long long) R * heads * half) return;
    int i = (int) (t % half);
    long long rh = t / half;  // r * heads + h
    int r = (int) (rh / heads);
    float* v = x + rh * headDim;
    float c, s;
    tandem::rope_cos_sin(positions[r], i, rotDim, base, factors, c, s);
    int a, b;
    tandem::rope_pair(i, rotDim, neox, a, b);
    float x0 = v[a], x1 = v[b];
    tandem::rope_rotate(x0, x1, c, s, v[a], v[b]);
}
TANDEM_EXPORT(rope, (float* x, const int* positions, const float* factors, int R, int heads, int headDim, int rotDim,
                     float base, int neox),
              (x, positions, factors, R, heads, headDim, rotDim, base, neox))
