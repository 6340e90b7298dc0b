package dev.tandem.runtime.cpu;
import dev.tandem.model.*;
import java.lang.foreign.Arena;
/** Not a test: prints the bytes the calling thread allocates over 1000 load+multiply per type (expect 0 once warm). */
public final class MatmulAllocationCheck {
  public static void main(String[] a) {
    var mx = (com.sun.management.ThreadMXBean) java.lang.management.ManagementFactory.getThreadMXBean();
    try (WorkerPool pool = new WorkerPool(2); Arena arena = Arena.ofShared()) {
      for (TensorType type : a.length > 0 ? new TensorType[] {TensorType.parse(a[0])} : TensorType.values()) {
        CpuMatrix m = CpuMatrix.of(RandomMatrices.matrix(type, 256, 512, 1, arena));
        Activations x = new Activations(5, 512); float[] in = RandomMatrices.activations(5, 512, 2); float[] out = new float[5 * 256];
        for (int i = 0; i < 3000; i++) { x.load(in, 1 + i % 5, 512); m.multiply(x, out, pool); }
        long before = mx.getThreadAllocatedBytes(Thread.currentThread().threadId());
        for (int i = 0; i < 1000; i++) { x.load(in, 1 + i % 5, 512); m.multiply(x, out, pool); }
        long after = mx.getThreadAllocatedBytes(Thread.currentThread().threadId());
        System.out.println(type + ": caller allocated " + (after - before) + " bytes in 1000 load+multiply");
      }
    }
  }
}
