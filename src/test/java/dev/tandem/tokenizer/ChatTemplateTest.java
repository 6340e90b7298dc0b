package dev.tandem.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tandem.model.ModelFile;
import dev.tandem.testing.SharedData;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.List;

import static dev.tandem.tokenizer.ChatMessage.assistant;
import static dev.tandem.tokenizer.ChatMessage.system;
import static dev.tandem.tokenizer.ChatMessage.user;
import static org.junit.jupiter.api.Assertions.*;

/**
 * Each template family renders what its documented format says, derived by hand from the template text:
 * ChatML (KJV models), Llama 3 (header ids, BOS first, trimmed content) and Qwen3 (ChatML with thinking blocks
 * dropped from earlier assistant turns).
 */
class ChatTemplateTest {
    static ChatTemplate fromTokenizerConfig(String family) throws Exception {
        JsonNode config = new ObjectMapper().readTree(SharedData.root().resolve("models/tokenizers").resolve(family).resolve("tokenizer_config.json").toFile());
        return new ChatTemplate(config.get("chat_template").asText(), config.path("bos_token").asText(""), config.path("eos_token").asText(""));
    }

    @Test
    void kjvChatMlTemplateFromTheGguf() {
        try (ModelFile file = ModelFile.open(Path.of("test-models/kjv-main-q8_0.gguf"))) {
            String source = Tokenizers.forModel(file).chatTemplate().orElseThrow();
            ChatTemplate t = new ChatTemplate(source, "<s>", "</s>");
            List<ChatMessage> chat = List.of(system("Answer from scripture."), user("Who made the heaven?"));
            assertEquals("<|im_start|>system\nAnswer from scripture.<|im_end|>\n<|im_start|>user\nWho made the heaven?<|im_end|>\n<|im_start|>assistant\n",
                    t.render(chat, true));
            assertEquals("<|im_start|>system\nAnswer from scripture.<|im_end|>\n<|im_start|>user\nWho made the heaven?<|im_end|>\n",
                    t.render(chat, false));
        }
    }

    @Test
    void llama3PutsBosFirstTrimsContentAndOpensTheAssistantHeader() throws Exception {
        ChatTemplate t = fromTokenizerConfig("llama3");
        String got = t.render(List.of(system("You are helpful."), user("  Hi there \n")), true);
        assertEquals("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are helpful.<|eot_id|>"
                + "<|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|>"
                + "<|start_header_id|>assistant<|end_header_id|>\n\n", got);
    }

    @Test
    void qwen3RendersChatMlAndDropsEarlierThinking() throws Exception {
        ChatTemplate t = fromTokenizerConfig("qwen3");
        assertEquals("<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n",
                t.render(List.of(system("S"), user("Q")), true));
        // an assistant turn before the last user query keeps only its answer (split on </think>, lstrip)
        assertEquals("<|im_start|>user\nQ1<|im_end|>\n<|im_start|>assistant\nA1<|im_end|>\n<|im_start|>user\nQ2<|im_end|>\n<|im_start|>assistant\n",
                t.render(List.of(user("Q1"), assistant("<think>\nR1\n</think>\n\nA1"), user("Q2")), true));
        // the last assistant turn after the last query keeps its reasoning, re-wrapped
        assertEquals("<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n<think>\nR\n</think>\n\nA<|im_end|>\n",
                t.render(List.of(user("Q"), assistant("<think>\nR\n</think>\n\nA")), false));
    }

    @Test
    void raiseExceptionStopsRenderingWithItsMessage() {
        ChatTemplate t = new ChatTemplate("{% if messages[0].role != 'user' %}{{ raise_exception('Conversations must start with a user message') }}{% endif %}ok", "", "");
        assertEquals("ok", t.render(List.of(user("x")), true));
        ChatTemplateException e = assertThrows(ChatTemplateException.class, () -> t.render(List.of(assistant("x")), true));
        assertTrue(e.getMessage().contains("Conversations must start with a user message"), e.getMessage());
    }

    @Test
    void aBrokenTemplateIsANamedError() {
        ChatTemplate t = new ChatTemplate("{% for m in messages %}{{ m.content.nosuchmethod(1) }}{% endfor %}", "", "");
        assertThrows(ChatTemplateException.class, () -> t.render(List.of(user("x")), true));
    }

    @Test
    void pythonStringMethodsKeepPythonSemantics() {
        ChatTemplate t = new ChatTemplate("{{ messages[0].content.split('|') | length }}:{{ messages[0].content.strip('|') }}:{{ messages[0].content.startswith('|a') }}", "", "");
        assertEquals("5:a||b:true", t.render(List.of(user("|a||b|")), false).replace("True", "true"));
    }

    /** Issue 14, defect 8: the whitespace control was a regex that took 22 s on 100k spaces (quadratic backtracking). */
    @Test
    void longWhitespaceRunsAreRewrittenInLinearTime() {
        String spaces = " ".repeat(200_000);
        String rewritten = assertTimeoutPreemptively(java.time.Duration.ofSeconds(10), () -> ChatTemplate.rewrite(spaces + "x" + spaces),
                "hang guard: a linear rewrite takes milliseconds, the quadratic one minutes");
        assertEquals(spaces + "x" + spaces, rewritten, "whitespace not beside {{- or -}} stays");
        String trimmed = assertTimeoutPreemptively(java.time.Duration.ofSeconds(10),
                () -> ChatTemplate.rewrite("a" + spaces + "\n{{- x -}}\t" + spaces + "b{{-y}}"));
        assertEquals("a{{ x }}b{{y}}", trimmed);
        String namespaces = assertTimeoutPreemptively(java.time.Duration.ofSeconds(10), () -> ChatTemplate.rewrite("namespace(".repeat(20_000)));
        assertEquals("namespace(".repeat(20_000), namespaces, "unclosed calls stay as they are");
    }

    @Test
    void whitespaceControlOfExpressionsIsAppliedAsBefore() {
        assertEquals("x{{ a }}y", ChatTemplate.rewrite("x \n {{- a -}} \n y"));
        assertEquals("{{ a }}{{ b }}", ChatTemplate.rewrite("{{- a -}}  {{- b -}}"));
        assertEquals("{% if x -%} {{ a }}", ChatTemplate.rewrite("{% if x -%} {{ a }}"), "statements are Jinjava's own");
    }
}
