package dev.tandem.runtime.cuda;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.lang.foreign.ValueLayout;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** The host driver has CUDA's stream and event semantics: in-order streams, cross-stream waits, sticky failures. */
class HostGpuDriverTest {
    HostGpuDriver driver;

    @BeforeEach
    void open() {
        assumeTrue(HostKernels.isAvailable(), () -> "host-emulation kernels not built: " + HostKernels.unavailableReason());
        driver = new HostGpuDriver();
    }

    @Test
    void copiesAndLaunchesRunInStreamOrder() {
        try (GpuStream s = driver.createStream(); PinnedBuffer host = driver.allocatePinned(16 * 4);
             DeviceBuffer a = driver.allocate(16 * 4); DeviceBuffer bias = driver.allocate(16 * 4)) {
            for (int i = 0; i < 16; i++) host.segment().setAtIndex(ValueLayout.JAVA_FLOAT, i, i);
            driver.copyToDevice(a, host, 0, s);
            driver.copyToDevice(bias, host, 0, s);
            driver.launch(Kernel.BIAS_ADD, LaunchGeometry.elementwise(16), s, a, bias, 16, 16);  // a = 2i
            driver.copyToHost(host, 0, a, s);
            driver.synchronize(s);
            for (int i = 0; i < 16; i++) assertEquals(2f * i, host.segment().getAtIndex(ValueLayout.JAVA_FLOAT, i));
        }
    }

    @Test
    void aStreamWaitingOnAnEventRunsAfterTheOtherStreamReachedIt() throws Exception {
        try (GpuStream producer = driver.createStream(); GpuStream consumer = driver.createStream(); GpuEvent written = driver.createEvent();
             PinnedBuffer in = driver.allocatePinned(4); PinnedBuffer out = driver.allocatePinned(4); DeviceBuffer d = driver.allocate(4)) {
            CountDownLatch release = new CountDownLatch(1);
            in.segment().set(ValueLayout.JAVA_INT, 0, 42);
            driver.enqueue(producer, () -> {
                try {
                    release.await();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            });
            driver.copyToDevice(d, in, 0, producer);
            driver.record(written, producer);
            driver.wait(consumer, written);
            driver.copyToHost(out, 0, d, consumer);
            CompletableFuture<Void> consumed = driver.whenDone(consumer);
            Thread.sleep(50);  // room for a missing wait to show; the assertions hold whatever the timing
            assertFalse(consumed.isDone(), "the consumer ran before the producer reached the event");
            assertFalse(driver.isDone(written));
            release.countDown();
            consumed.get();
            assertTrue(driver.isDone(written));
            assertEquals(42, out.segment().get(ValueLayout.JAVA_INT, 0));
        }
    }

    @Test
    void aFailedLaunchIsReportedAtTheNextSynchronize() {
        try (GpuStream s = driver.createStream(); DeviceBuffer a = driver.allocate(4)) {
            driver.launch(Kernel.BIAS_ADD, LaunchDims.linear(1, 2048), s, a, a, 1, 1);  // more threads than a block holds
            assertThrows(KernelLaunchException.class, () -> driver.synchronize(s));
            driver.synchronize(s);  // reported once; the stream is usable again
        }
    }
}
