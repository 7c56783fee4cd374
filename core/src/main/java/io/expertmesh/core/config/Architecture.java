package io.expertmesh.core.config;

import java.util.List;

/** The Hugging Face architectures ExpertMesh can run, by their {@code architectures[0]} name in config.json. */
public enum Architecture {
    DEEPSEEK_V3("DeepseekV3ForCausalLM"),
    QWEN3_MOE("Qwen3MoeForCausalLM"),
    QWEN2_MOE("Qwen2MoeForCausalLM"),
    MIXTRAL("MixtralForCausalLM");

    private final String hfName;

    Architecture(String hfName) {
        this.hfName = hfName;
    }

    public String hfName() {
        return hfName;
    }

    /** True when attention is multi-head latent attention (DeepSeek); false for grouped-query attention. */
    public boolean usesMla() {
        return this == DEEPSEEK_V3;
    }

    public static Architecture fromHf(String name) {
        for (Architecture a : values()) {
            if (a.hfName.equals(name)) {
                return a;
            }
        }
        throw new IllegalArgumentException("unsupported architecture '" + name + "'; supported: "
                + List.of(values()).stream().map(Architecture::hfName).toList());
    }
}
