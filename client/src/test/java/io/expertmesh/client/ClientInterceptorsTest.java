package io.expertmesh.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.expertmesh.client.fake.FakeInferenceService;
import io.expertmesh.client.fake.FakeRouter;
import io.grpc.CallOptions;
import io.grpc.Channel;
import io.grpc.ClientCall;
import io.grpc.ClientInterceptor;
import io.grpc.MethodDescriptor;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.Test;

/** {@link ClientConfig#interceptors()}: every call goes through them, the first of the list first. */
class ClientInterceptorsTest {
    /** Records "name:Method" for each call it sees. */
    private static ClientInterceptor recording(String name, List<String> seen) {
        return new ClientInterceptor() {
            @Override
            public <Q, R> ClientCall<Q, R> interceptCall(MethodDescriptor<Q, R> method, CallOptions options,
                                                         Channel next) {
                seen.add(name + ":" + method.getBareMethodName());
                return next.newCall(method, options);
            }
        };
    }

    @Test
    void builtClient_everyCallThroughInterceptors_inListOrder() throws Exception {
        List<String> seen = new CopyOnWriteArrayList<>();
        ClientConfig config = ClientConfig.defaults().withInterceptors(List.of(recording("a", seen),
                recording("b", seen)));
        try (FakeRouter router = FakeRouter.onSocket(new FakeInferenceService());
             ExpertMeshClient client = ExpertMeshClient.builder(router.target()).config(config).build()) {
            client.modelInfo();
            assertEquals(2, client.generate(Requests.tokenIds(1, 2).setMaxTokens(2).build()).tokens().size());
        }
        assertEquals(List.of("a:GetModelInfo", "b:GetModelInfo", "a:Generate", "b:Generate"), seen);
    }

    @Test
    void clientOverChannel_interceptorsApplyToo() throws Exception {
        List<String> seen = new CopyOnWriteArrayList<>();
        try (FakeRouter router = FakeRouter.inProcess(new FakeInferenceService());
             ExpertMeshClient client = ExpertMeshClient.over(router.channel(),
                     ClientConfig.defaults().withInterceptors(List.of(recording("x", seen))))) {
            client.status();
        }
        assertEquals(List.of("x:GetStatus"), seen);
    }

    @Test
    void interceptors_nullOrNullElement_rejected_listCopied() {
        assertThrows(NullPointerException.class, () -> ClientConfig.defaults().withInterceptors(null));
        List<ClientInterceptor> withNull = new ArrayList<>();
        withNull.add(null);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> ClientConfig.defaults().withInterceptors(withNull));
        assertEquals("interceptors must not contain null", e.getMessage());
        List<ClientInterceptor> mutable = new ArrayList<>(List.of(recording("a", new ArrayList<>())));
        ClientConfig c = ClientConfig.defaults().withInterceptors(mutable);
        mutable.clear();
        assertEquals(1, c.interceptors().size(), "the config keeps its own copy");
        assertEquals(List.of(), ClientConfig.defaults().interceptors());
    }
}
