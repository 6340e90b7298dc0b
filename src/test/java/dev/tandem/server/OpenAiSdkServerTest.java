package dev.tandem.server;

import com.openai.client.OpenAIClient;
import com.openai.client.okhttp.OpenAIOkHttpClient;
import com.openai.core.JsonValue;
import com.openai.core.http.StreamResponse;
import com.openai.errors.BadRequestException;
import com.openai.errors.NotFoundException;
import com.openai.errors.UnauthorizedException;
import com.openai.models.chat.completions.ChatCompletion;
import com.openai.models.chat.completions.ChatCompletionChunk;
import com.openai.models.chat.completions.ChatCompletionCreateParams;
import com.openai.models.chat.completions.ChatCompletionStreamOptions;
import com.openai.models.completions.Completion;
import com.openai.models.completions.CompletionCreateParams;
import com.openai.models.completions.CompletionUsage;
import com.openai.models.models.Model;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

import java.time.Duration;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** The official OpenAI Java SDK against a real server (with an API key) over the KJV pair, as a real client would use it. */
class OpenAiSdkServerTest {
    static final String KEY = "sesame";
    static final String MODEL = "kjv-main-q8_0";

    @RegisterExtension
    static final ServerFixture KJV = new ServerFixture(4, 16, o -> o.withApiKey(KEY));
    static OpenAIClient client;

    /** After the fixture has started the server; closed before it stops it. */
    @BeforeAll
    static void connect() {
        client = sdk(KEY);
    }

    @AfterAll
    static void disconnect() {
        client.close();
    }

    /** No retries: a test sees the server's first answer. */
    static OpenAIClient sdk(String key) {
        return OpenAIOkHttpClient.builder().baseUrl(KJV.server().url() + "/v1").apiKey(key).maxRetries(0).timeout(Duration.ofSeconds(60)).build();
    }

    static ChatCompletionCreateParams chat(String content) {
        return ChatCompletionCreateParams.builder().model(MODEL).addUserMessage(content).maxCompletionTokens(24).temperature(0.0).build();
    }

    @Test
    void modelsListsTheMainModelFirst() {
        List<Model> models = client.models().list().data();
        assertEquals(List.of(MODEL, "kjv-draft-q8_0"), models.stream().map(Model::id).toList());
    }

    @Test
    void aChatCompletionHasContentUsageAndTheModelName() {
        ChatCompletion c = client.chat().completions().create(chat("Who made the heaven?"));
        assertEquals(MODEL, c.model());
        assertEquals(1, c.choices().size());
        String content = c.choices().getFirst().message().content().orElseThrow();
        assertFalse(content.isEmpty());
        CompletionUsage usage = c.usage().orElseThrow();
        assertTrue(usage.promptTokens() > 0, usage.toString());
        assertTrue(usage.completionTokens() > 0 && usage.completionTokens() <= 24, usage.toString());
        assertEquals(usage.promptTokens() + usage.completionTokens(), usage.totalTokens());
        ChatCompletion.Choice.FinishReason reason = c.choices().getFirst().finishReason();
        assertTrue(reason.equals(ChatCompletion.Choice.FinishReason.STOP) || reason.equals(ChatCompletion.Choice.FinishReason.LENGTH), reason.toString());
    }

    @Test
    void streamedDeltasConcatenateToTheGreedyCompletion() {
        String whole = client.chat().completions().create(chat("Tell of Moses")).choices().getFirst().message().content().orElseThrow();
        ChatCompletionCreateParams params = chat("Tell of Moses").toBuilder()
                .streamOptions(ChatCompletionStreamOptions.builder().includeUsage(true).build()).build();
        StringBuilder text = new StringBuilder();
        CompletionUsage usage = null;
        try (StreamResponse<ChatCompletionChunk> stream = client.chat().completions().createStreaming(params)) {
            for (ChatCompletionChunk chunk : (Iterable<ChatCompletionChunk>) stream.stream()::iterator) {
                assertEquals(MODEL, chunk.model());
                for (ChatCompletionChunk.Choice choice : chunk.choices()) choice.delta().content().ifPresent(text::append);
                if (chunk.usage().isPresent()) usage = chunk.usage().get();
            }
        }
        assertEquals(whole, text.toString());
        assertNotNull(usage, "include_usage gives a usage chunk");
        assertTrue(usage.completionTokens() > 0);
    }

    @Test
    void aLegacyCompletionStreamedAndNotGivesTheSameText() {
        CompletionCreateParams params = CompletionCreateParams.builder().model(MODEL).prompt("In the beginning God created")
                .maxTokens(24).temperature(0.0).build();
        Completion whole = client.completions().create(params);
        assertEquals(MODEL, whole.model());
        String text = whole.choices().getFirst().text();
        assertFalse(text.isEmpty());
        StringBuilder streamed = new StringBuilder();
        try (StreamResponse<Completion> stream = client.completions().createStreaming(params)) {
            stream.stream().forEach(c -> c.choices().forEach(choice -> streamed.append(choice.text())));
        }
        assertEquals(text, streamed.toString());
    }

    @Test
    void aDraftModelPassedAsAnExtraFieldSpeculatesAndKeepsTheText() {
        ChatCompletion plain = client.chat().completions().create(chat("And the LORD said unto Moses"));
        ChatCompletion spec = client.chat().completions().create(chat("And the LORD said unto Moses").toBuilder()
                .putAdditionalBodyProperty("draft_model", JsonValue.from("kjv-draft-q8_0")).build());
        assertEquals(plain.choices().getFirst().message().content(), spec.choices().getFirst().message().content());
        CompletionUsage.CompletionTokensDetails details = spec.usage().orElseThrow().completionTokensDetails().orElseThrow();
        assertTrue(details.acceptedPredictionTokens().orElseThrow() > 0, details.toString());
    }

    @Test
    void anUnknownModelRaisesNotFound() {
        NotFoundException e = assertThrows(NotFoundException.class, () -> client.chat().completions().create(
                chat("Who made the heaven?").toBuilder().model("gpt-4o").build()));
        assertEquals(404, e.statusCode());
        assertEquals("model", e.param().orElseThrow());
        assertTrue(e.getMessage().contains("gpt-4o"), e.getMessage());
    }

    @Test
    void aWrongApiKeyRaisesUnauthorized() {
        OpenAIClient wrong = sdk("open-barley");
        try {
            UnauthorizedException e = assertThrows(UnauthorizedException.class, () -> wrong.chat().completions().create(chat("Who made the heaven?")));
            assertEquals(401, e.statusCode());
            assertEquals("invalid_api_key", e.code().orElseThrow());
        } finally {
            wrong.close();
        }
    }

    @Test
    void aBadValueRaisesBadRequestNamingTheField() {
        BadRequestException e = assertThrows(BadRequestException.class, () -> client.chat().completions().create(
                chat("Who made the heaven?").toBuilder().topP(1.5).build()));
        assertEquals("top_p", e.param().orElseThrow());
    }
}
