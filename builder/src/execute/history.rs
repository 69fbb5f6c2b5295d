//! The history entry of each step: its `created_by` text, in BuildKit's style, so
//! `docker history` reads the same for images berth builds.

use crate::dockerfile::Instruction;
use crate::imageconfig::ImageConfig;

/// The history `created_by` of a step, BuildKit's style.
pub(super) fn created_by(inst: &Instruction, config: &ImageConfig) -> String {
    let json = |v: &[String]| serde_json::to_string(v).unwrap_or_default();
    match inst {
        Instruction::Run { command, .. } => {
            format!("RUN {} # buildkit", config.argv(command).join(" "))
        }
        Instruction::Copy { args, from, .. } => {
            let from = from
                .as_ref()
                .map(|f| format!("--from={} ", f.value))
                .unwrap_or_default();
            let srcs: Vec<&str> = args.sources.iter().map(|s| s.value.as_str()).collect();
            format!("COPY {from}{} {} # buildkit", srcs.join(" "), args.dest)
        }
        Instruction::Add { args, .. } => {
            let srcs: Vec<&str> = args.sources.iter().map(|s| s.value.as_str()).collect();
            format!("ADD {} {} # buildkit", srcs.join(" "), args.dest)
        }
        Instruction::Workdir { path, .. } => format!("WORKDIR {path}"),
        Instruction::Env { vars, .. } => format!(
            "ENV {}",
            vars.iter()
                .map(|kv| format!("{}={}", kv.key, kv.value))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        Instruction::Label { labels, .. } => format!(
            "LABEL {}",
            labels
                .iter()
                .map(|kv| format!("{}={}", kv.key, kv.value))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        Instruction::Cmd { command, .. } => format!("CMD {}", json(&config.argv(command))),
        Instruction::Entrypoint { command, .. } => {
            format!("ENTRYPOINT {}", json(&config.argv(command)))
        }
        Instruction::Expose { ports, .. } => format!("EXPOSE map[{}]", ports.join(" ")),
        Instruction::Volume { paths, .. } => format!("VOLUME {}", json(paths)),
        Instruction::User { user, .. } => format!("USER {user}"),
        Instruction::Shell { shell, .. } => format!("SHELL {}", json(shell)),
        Instruction::Stopsignal { signal, .. } => format!("STOPSIGNAL {signal}"),
        Instruction::Healthcheck { .. } => "HEALTHCHECK".into(),
        Instruction::Onbuild { expression, .. } => format!("ONBUILD {expression}"),
        Instruction::Maintainer { name, .. } => format!("MAINTAINER {name}"),
        other => other.keyword().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dockerfile::parse;

    #[test]
    fn created_by_reads_as_buildkit_writes_it() {
        let df = parse(
            "Dockerfile",
            "FROM scratch\nRUN echo hi\nRUN [\"/bin/true\", \"x\"]\nCOPY --from=x a b /d\n\
             ADD a /d\nWORKDIR /w\nENV A=1 B=2\nLABEL l=v\nCMD run me\nENTRYPOINT [\"e\"]\n\
             EXPOSE 80/tcp 53/udp\nVOLUME /v\nUSER app\nSHELL [\"/bin/bash\", \"-c\"]\n\
             STOPSIGNAL SIGINT\nONBUILD RUN x\nMAINTAINER me\nARG X\n",
        )
        .unwrap();
        let config = ImageConfig::scratch("linux", "amd64");
        let got: Vec<String> = df.instructions[1..]
            .iter()
            .map(|i| created_by(i, &config))
            .collect();
        assert_eq!(
            got,
            [
                "RUN /bin/sh -c echo hi # buildkit",
                "RUN /bin/true x # buildkit",
                "COPY --from=x a b /d # buildkit",
                "ADD a /d # buildkit",
                "WORKDIR /w",
                "ENV A=1 B=2",
                "LABEL l=v",
                "CMD [\"/bin/sh\",\"-c\",\"run me\"]",
                "ENTRYPOINT [\"e\"]",
                "EXPOSE map[80/tcp 53/udp]",
                "VOLUME [\"/v\"]",
                "USER app",
                "SHELL [\"/bin/bash\",\"-c\"]",
                "STOPSIGNAL SIGINT",
                "ONBUILD RUN x",
                "MAINTAINER me",
                "ARG",
            ]
        );
    }
}
