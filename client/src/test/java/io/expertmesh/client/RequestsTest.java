package io.expertmesh.client;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.expertmesh.proto.inference.v1.GenerateRequest;
import org.junit.jupiter.api.Test;

class RequestsTest {
    @Test
    void chat_systemAndUser_twoMessagesInOrder() {
        GenerateRequest r = Requests.chat("be brief", "hi").build();
        assertEquals(GenerateRequest.PromptCase.CHAT, r.getPromptCase());
        assertEquals("system", r.getChat().getMessages(0).getRole());
        assertEquals("hi", r.getChat().getMessages(1).getContent());
    }

    @Test
    void tokenIds_ids_keptInOrder() {
        assertEquals(java.util.List.of(3, 1, 2), Requests.tokenIds(3, 1, 2).build().getTokenIds().getIdsList());
    }

    @Test
    void greedy_setsTemperatureZeroOnly() {
        var s = Requests.greedy();
        assertEquals(0f, s.getTemperature());
        assertEquals(false, s.hasTopP());
    }
}
