package dev.tandem.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tandem.engine.Engine;
import dev.tandem.engine.GenerationRequest;
import dev.tandem.engine.Tandem;
import dev.tandem.tokenizer.ChatMessage;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

import java.net.http.HttpResponse;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static dev.tandem.server.ServerFixture.JSON;
import static dev.tandem.server.ServerFixture.json;
import static org.junit.jupiter.api.Assertions.*;

/**
 * A two-turn chat through the server: the second request finds the first turn's prompt and reply in the prefix
 * cache and prefills only the new turn's tokens ({@code tandem_prefix_cache_hit_tokens_total} and
 * {@code usage.prompt_tokens_details.cached_tokens} say how many it did not), with the replies of a server started
 * without the cache ({@code --no-prefix-cache}).
 */
class PrefixCacheServerTest {
    static final int BLOCK = 16;
    static final String SYSTEM = "You answer from the first book of Moses. In the beginning God created the heaven and the earth. "
            + "And the earth was without form, and void; and darkness was upon the face of the deep. And the Spirit of God moved "
            + "upon the face of the waters. And God said, Let there be light: and there was light.";

    @RegisterExtension static final ServerFixture KJV = new ServerFixture();

    static Engine uncachedEngine;
    static OpenAiServer uncached;

    @BeforeAll
    static void start() {
        uncachedEngine = Tandem.builder().model(ServerFixture.MAIN).draft(ServerFixture.DRAFT).threads(1).parallel(4).prefixCache(false).build();
        uncached = new OpenAiServer(uncachedEngine, OpenAiServer.Options.defaults().withPort(0)).start();
    }

    @AfterAll
    static void stop() {
        if (uncached != null) uncached.close();
        if (uncachedEngine != null) uncachedEngine.close();
    }

    static String body(List<ChatMessage> messages) {
        ObjectNode root = JSON.createObjectNode();
        ArrayNode m = root.putArray("messages");
        for (ChatMessage c : messages) m.addObject().put("role", c.role()).put("content", c.content());
        root.put("temperature", 0).put("max_tokens", 24);
        return root.toString();
    }

    static JsonNode chat(OpenAiServer server, List<ChatMessage> messages) throws Exception {
        HttpResponse<String> r = ServerFixture.post(server, "/v1/chat/completions", body(messages));
        assertEquals(200, r.statusCode(), r.body());
        return json(r);
    }

    static String reply(JsonNode response) { return response.get("choices").get(0).get("message").get("content").asText(); }

    static int cachedTokens(JsonNode response) { return response.get("usage").get("prompt_tokens_details").get("cached_tokens").asInt(); }

    @Test
    void aSecondChatTurnPrefillsOnlyItsNewTokensAndRepliesAsWithoutTheCache() throws Exception {
        List<ChatMessage> first = List.of(new ChatMessage("system", SYSTEM), ChatMessage.user("What did God create in the beginning?"));
        JsonNode one = chat(KJV.server(), first);
        assertEquals(reply(chat(uncached, first)), reply(one));

        List<ChatMessage> second = new ArrayList<>(first);
        second.add(new ChatMessage("assistant", reply(one)));
        second.add(ChatMessage.user("And what was upon the face of the deep?"));
        double hitsBefore = Scrape.of(KJV.server()).get("tandem_prefix_cache_hit_tokens_total");
        JsonNode two = chat(KJV.server(), second);
        int cached = cachedTokens(two);
        assertEquals(cached, Scrape.of(KJV.server()).get("tandem_prefix_cache_hit_tokens_total") - hitsBefore, 0.0);

        // What the first turn left in the cache: its prompt and its reply's tokens but the last (never run).
        Engine engine = KJV.engine();
        int[] firstPrompt = engine.promptTokens(GenerationRequest.builder().messages(first).build());
        int[] firstReply = engine.generateBlocking(GenerationRequest.builder().messages(first).maxTokens(24).build()).tokenIds();
        int[] held = Arrays.copyOf(firstPrompt, firstPrompt.length + firstReply.length - 1);
        System.arraycopy(firstReply, 0, held, firstPrompt.length, firstReply.length - 1);
        int[] secondPrompt = engine.promptTokens(GenerationRequest.builder().messages(second).build());
        assertEquals(secondPrompt.length, two.get("usage").get("prompt_tokens").asInt());
        int common = 0;
        while (common < held.length && common < secondPrompt.length && held[common] == secondPrompt[common]) common++;
        assertTrue(common >= firstPrompt.length, "the second turn's prompt starts with the first's");
        assertEquals(Math.min(common, secondPrompt.length - 1) / BLOCK * BLOCK, cached, "whole blocks of what the turns have in common");
        int newTokens = secondPrompt.length - common;
        assertTrue(secondPrompt.length - cached < newTokens + BLOCK,
                "prefilled " + (secondPrompt.length - cached) + " tokens for a turn of " + newTokens + " new ones");

        JsonNode reference = chat(uncached, second);
        assertEquals(reply(reference), reply(two));
        assertEquals(0, cachedTokens(reference));
        assertEquals(0.0, Scrape.of(uncached).get("tandem_prefix_cache_hit_tokens_total"));
        Scrape after = Scrape.until(KJV.server(), 5_000, Scrape::idle);
        assertEquals(0.0, after.get("tandem_kv_blocks_in_use"));
        assertTrue(after.get("tandem_kv_blocks_cached") > 0, "the conversation stays cached");
    }
}
