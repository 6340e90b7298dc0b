package dev.tandem.server;

import com.fasterxml.jackson.databind.JsonNode;
import dev.tandem.engine.Engine;
import dev.tandem.engine.FaultInjectingBackend;
import dev.tandem.engine.Tandem;
import org.junit.jupiter.api.Test;

import java.net.http.HttpResponse;
import java.time.Duration;

import static dev.tandem.server.ServerFixture.*;
import static org.junit.jupiter.api.Assertions.*;

/**
 * Issue 14 over HTTP: a fault injected into one request's work ({@link FaultInjectingBackend}) is a 500 with an
 * OpenAI-style error naming it, and the server keeps serving with {@code /health} 200; an error that leaves the
 * engine unusable turns {@code /health} to 503, and later requests get a 503 instead of hanging.
 */
class EngineFailureServerTest {
    static final String FAULTY = "{\"prompt\":[1," + FaultInjectingBackend.TRIGGER + ",5],\"max_tokens\":4}";

    @Test
    void oneSequencesFaultIsA500AndAnUnusableEngineTurnsHealthTo503() {
        assertTimeoutPreemptively(Duration.ofSeconds(60), () -> {
            try (FaultInjectingBackend backend = new FaultInjectingBackend();
                 Engine engine = Tandem.builder().model(MAIN).backend(backend).threads(1).parallel(2).maxQueue(8).build();
                 OpenAiServer server = new OpenAiServer(engine, OpenAiServer.Options.defaults().withPort(0)).start()) {
                String greedy = completionBody("In the beginning God", ",\"max_tokens\":16");
                String before = json(post(server, "/v1/completions", greedy)).get("choices").get(0).get("text").asText();

                backend.arm(() -> new OutOfMemoryError("injected"));
                HttpResponse<String> r = post(server, "/v1/completions", FAULTY);
                assertEquals(500, r.statusCode(), r.body());
                JsonNode error = json(r).get("error");
                assertEquals("server_error", error.get("type").asText());
                assertTrue(error.get("message").asText().contains("OutOfMemoryError"), r.body());
                assertFalse(r.body().contains("\tat "), "no stack trace");
                assertEquals(200, get(server, "/health").statusCode(), "one sequence's fault leaves the server healthy");
                assertEquals(before, json(post(server, "/v1/completions", greedy)).get("choices").get(0).get("text").asText());

                backend.arm(() -> new InternalError("injected"));
                assertEquals(500, post(server, "/v1/completions", FAULTY).statusCode());
                HttpResponse<String> health = get(server, "/health");
                assertEquals(503, health.statusCode(), health.body());
                assertEquals("error", json(health).get("status").asText());
                assertTrue(json(health).get("error").asText().contains("InternalError"), health.body());
                HttpResponse<String> refused = post(server, "/v1/completions", greedy);
                assertEquals(503, refused.statusCode(), refused.body());
                assertEquals("engine_failed", json(refused).get("error").get("code").asText());
            }
        });
    }
}
