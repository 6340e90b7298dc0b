package dev.tandem.server;

import com.fasterxml.jackson.databind.JsonNode;
import dev.tandem.engine.Engine;
import dev.tandem.engine.Tandem;
import dev.tandem.runtime.cuda.CudaBackend;
import dev.tandem.runtime.cuda.EmulatedDevice;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import java.net.http.HttpResponse;
import java.time.Duration;

import static dev.tandem.server.ServerFixture.*;
import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * {@code tandem serve} on the CUDA backend through JCuda on the emulated driver (the pom's emulated-cuda run): a
 * device fault during a request is a 500 with an OpenAI-style error naming the CUDA error, the context is lost, so
 * {@code /health} turns 503 and later requests get a 503 at once instead of hanging. (The time limit is a hang
 * guard.)
 */
@Tag("emulated-cuda")
class EmulatedCudaServerTest {
    @BeforeAll
    static void emulatedDriver() { assumeTrue(EmulatedDevice.isActive(), EmulatedDevice::whyNot); }

    @AfterEach
    void noFaultLeftArmed() { EmulatedDevice.injectFault(0); }

    @Test
    void aDeviceFaultIsA500NamingItThenHealthAndLaterRequestsAre503() {
        assertTimeoutPreemptively(Duration.ofMinutes(3), () -> {
            try (CudaBackend cuda = CudaBackend.onDevice();
                 Engine engine = Tandem.builder().model(MAIN).backend(cuda).threads(1).parallel(1).maxQueue(4).build();
                 OpenAiServer server = new OpenAiServer(engine, OpenAiServer.Options.defaults().withPort(0)).start()) {
                String body = completionBody("In the beginning God", ",\"max_tokens\":4");
                assertEquals(200, post(server, "/v1/completions", body).statusCode());
                assertEquals(200, get(server, "/health").statusCode());

                EmulatedDevice.injectFault(3);
                HttpResponse<String> r = post(server, "/v1/completions", body);
                assertEquals(500, r.statusCode(), r.body());
                JsonNode error = json(r).get("error");
                assertEquals("server_error", error.get("type").asText(), r.body());
                assertTrue(error.get("message").asText().contains("CUDA_ERROR_ILLEGAL_ADDRESS"), r.body());
                assertFalse(r.body().contains("\tat "), "no stack trace");

                HttpResponse<String> health = get(server, "/health");
                assertEquals(503, health.statusCode(), health.body());
                assertTrue(json(health).get("error").asText().contains("CUDA_ERROR_ILLEGAL_ADDRESS"), health.body());
                HttpResponse<String> refused = post(server, "/v1/completions", body);
                assertEquals(503, refused.statusCode(), refused.body());
                assertEquals("engine_failed", json(refused).get("error").get("code").asText());
            }
        });
    }
}
