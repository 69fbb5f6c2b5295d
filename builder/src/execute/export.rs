//! Export: the target stage's config is finished (its `created` time set) and written
//! with the stage's layers as an image, one record per tag.

use super::stages::{Runner, StageOut};
use super::BuildError;
use crate::commit::{write_image, WrittenImage};
use crate::progress::Event;

impl Runner<'_> {
    /// Writes `target` to the store as the build's image.
    pub(super) fn export(&mut self, target: StageOut) -> Result<WrittenImage, BuildError> {
        let mut config = target.config;
        config.finish(&target.created);
        (self.progress)(&Event::Note {
            text: "exporting to image".into(),
        });
        Ok(write_image(
            self.store,
            config.doc,
            &target.layers,
            &self.build.opts.tags,
        )?)
    }
}

#[cfg(test)]
mod tests {
    use berth_image::manifest::PlatformSpec;
    use serde_json::Value;

    use super::*;
    use crate::cachekey::CacheKey;
    use crate::execute::fixture::Fixture;
    use crate::imageconfig::ImageConfig;
    use crate::plan::StageBase;

    fn target() -> StageOut {
        StageOut {
            key: CacheKey::base("scratch"),
            layers: Vec::new(),
            config: ImageConfig::scratch("linux", "amd64"),
            end: StageBase::default(),
            created: "2020-01-02T03:04:05Z".into(),
        }
    }

    #[test]
    fn export_names_the_image_by_each_tag_and_dates_it() {
        let f = Fixture::new("FROM scratch\n", &[], &["one:1", "two:2"]);
        let mut events = Vec::new();
        let mut progress = |e: &Event| events.push(e.clone());
        let written = f.runner(&mut progress).export(target()).unwrap();
        assert_eq!(written.records.len(), 2);
        assert_eq!(
            events,
            [Event::Note {
                text: "exporting to image".into()
            }]
        );
        for tag in ["one:1", "two:2"] {
            let img = f.store.resolve(tag, &PlatformSpec::host()).unwrap();
            assert_eq!(img.config_digest, written.id);
            let doc: Value = serde_json::from_slice(&img.config_raw).unwrap();
            assert_eq!(doc["created"], "2020-01-02T03:04:05Z");
            assert_eq!(doc["rootfs"]["diff_ids"], serde_json::json!([]));
        }
    }

    #[test]
    fn export_without_tags_writes_one_unnamed_record() {
        let f = Fixture::new("FROM scratch\n", &[], &[]);
        let mut progress = |_: &Event| {};
        let written = f.runner(&mut progress).export(target()).unwrap();
        assert_eq!(written.records.len(), 1);
    }
}
