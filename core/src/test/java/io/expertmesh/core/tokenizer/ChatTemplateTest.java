package io.expertmesh.core.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Expected prompts were rendered from the same tokenizer_config.json by Python Jinja2 3.1.6 in the
 * environment transformers uses (ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks, loopcontrols).
 */
class ChatTemplateTest {
    private static final String BOS = "<｜begin▁of▁sentence｜>";
    private final ModelTokenizer tok = DeepSeekV3.tokenizer();

    @Test
    void applyChatTemplate_systemAndUser_rendersDeepSeekFormat() {
        List<ChatMessage> chat = List.of(ChatMessage.system("You are a helpful assistant."), ChatMessage.user("Hello!"));
        assertEquals(BOS + "You are a helpful assistant.<｜User｜>Hello!", tok.applyChatTemplate(chat, false));
        assertEquals(BOS + "You are a helpful assistant.<｜User｜>Hello!<｜Assistant｜>", tok.applyChatTemplate(chat, true));
    }

    @Test
    void applyChatTemplate_multiTurnTwoSystems_joinsSystemsAndClosesAssistantTurns() {
        List<ChatMessage> chat = List.of(ChatMessage.system("S1"), ChatMessage.system("S2"), ChatMessage.user("Hi"),
                ChatMessage.assistant("Hello, how can I help?"), ChatMessage.user("Tell me a joke."));
        assertEquals(BOS + "S1\n\nS2<｜User｜>Hi<｜Assistant｜>Hello, how can I help?<｜end▁of▁sentence｜>"
                        + "<｜User｜>Tell me a joke.<｜Assistant｜>",
                tok.applyChatTemplate(chat, true));
    }

    @Test
    void applyChatTemplate_toolOutputs_rendersToolBlock() {
        List<ChatMessage> chat = List.of(ChatMessage.user("weather?"), ChatMessage.tool("{\"t\":20}"),
                ChatMessage.tool("{\"t\":21}"), ChatMessage.assistant("It is 20C."));
        assertEquals(BOS + "<｜User｜>weather?<｜tool▁outputs▁begin｜><｜tool▁output▁begin｜>{\"t\":20}<｜tool▁output▁end｜>"
                        + "\n<｜tool▁output▁begin｜>{\"t\":21}<｜tool▁output▁end｜><｜tool▁outputs▁end｜>It is 20C."
                        + "<｜end▁of▁sentence｜><｜Assistant｜>",
                tok.applyChatTemplate(chat, true));
    }

    @Test
    void applyChatTemplate_endsWithTool_closesToolBlockWithoutGenerationPrompt() {
        List<ChatMessage> chat = List.of(ChatMessage.user("weather?"), ChatMessage.tool("{\"t\":20}"));
        assertEquals(BOS + "<｜User｜>weather?<｜tool▁outputs▁begin｜><｜tool▁output▁begin｜>{\"t\":20}"
                        + "<｜tool▁output▁end｜><｜tool▁outputs▁end｜>",
                tok.applyChatTemplate(chat, true));
    }

    @Test
    void applyChatTemplate_unicodeAndNewlines_keptVerbatim() {
        List<ChatMessage> chat = List.of(ChatMessage.user("你好，世界 🦊\nline2"));
        assertEquals(BOS + "<｜User｜>你好，世界 🦊\nline2", tok.applyChatTemplate(chat, false));
    }

    @Test
    void applyChatTemplate_contentWithJinjaSyntax_isNotEvaluated() {
        List<ChatMessage> chat = List.of(ChatMessage.user("{{ 7 * 7 }} {% if %} <b>&amp;</b>"));
        assertEquals(BOS + "<｜User｜>{{ 7 * 7 }} {% if %} <b>&amp;</b><｜Assistant｜>", tok.applyChatTemplate(chat, true));
    }

    @Test
    void encodeChat_systemAndUser_hasSingleBosAndRoleTokens() {
        int[] ids = tok.encodeChat(List.of(ChatMessage.system("S"), ChatMessage.user("Hi")), true);
        int user = tok.tokenId("<｜User｜>").orElseThrow();
        int assistant = tok.tokenId("<｜Assistant｜>").orElseThrow();
        int s = tok.encode("S", false)[0];
        assertArrayEquals(new int[] {0, s, user, 23166, assistant}, ids);
    }

    @Test
    void chatMessage_unknownRole_throwsNamingAllowedRoles() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new ChatMessage("bot", "hi"));
        assertTrue(e.getMessage().contains("'bot'") && e.getMessage().contains("user"), e.getMessage());
    }

    @Test
    void chatMessage_nullRoleOrContent_throws() {
        assertThrows(IllegalArgumentException.class, () -> new ChatMessage(null, "hi"));
        assertThrows(IllegalArgumentException.class, () -> new ChatMessage("user", null));
    }

    @Test
    void applyChatTemplate_emptyOrNullMessages_throws() {
        assertThrows(IllegalArgumentException.class, () -> tok.applyChatTemplate(List.of(), true));
        assertThrows(IllegalArgumentException.class, () -> tok.applyChatTemplate(null, true));
        List<ChatMessage> withNull = new ArrayList<>();
        withNull.add(ChatMessage.user("hi"));
        withNull.add(null);
        assertThrows(IllegalArgumentException.class, () -> tok.applyChatTemplate(withNull, true));
    }

    @Test
    void render_templateCallsRaiseException_throwsWithItsMessage() {
        ChatTemplate template = new ChatTemplate(
                "{% for m in messages %}{% if m['role'] == 'tool' %}{{ raise_exception('tools are not supported') }}"
                        + "{% endif %}{{ m['content'] }}{% endfor %}",
                "<s>", "</s>");
        assertEquals("hi", template.render(List.of(ChatMessage.user("hi")), false));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> template.render(List.of(ChatMessage.tool("x")), false));
        assertTrue(e.getMessage().contains("tools are not supported"), e.getMessage());
    }

    @Test
    void render_loopControlsAndLoopVariables_workAsInJinja2() {
        ChatTemplate template = new ChatTemplate(
                "{% for m in messages %}{% if loop.index0 == 2 %}{% break %}{% endif %}"
                        + "{% if m['role'] == 'system' %}{% continue %}{% endif %}"
                        + "{{ bos_token if loop.first else '|' }}{{ m['content'] | trim }}{% endfor %}"
                        + "{% if add_generation_prompt %}{{ eos_token }}{% endif %}",
                "<s>", "</s>");
        List<ChatMessage> chat = List.of(ChatMessage.user(" a "), ChatMessage.assistant("b"), ChatMessage.user("c"));
        assertEquals("<s>a|b</s>", template.render(chat, true));
    }
}
