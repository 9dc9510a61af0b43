import ArgumentParser

/// Shell completions: ArgumentParser's, which complete `fastcapa capture …`,
/// `fastcapa check …` and the tools. For bash, a wrapper also completes the
/// capture's options where the command is not named, as operators type it:
/// at the start (`fastcapa --con<TAB>`) and after EAL options and a bare `--`
/// (`fastcapa -l 0-2 -- --ring-<TAB>`, `fastcapa check -l 0-2 -- --time<TAB>`).
enum Completions {
    /// `fastcapa --generate-completion-script SHELL`, or nil when the command line asks for something else.
    static func script(for arguments: [String]) -> String? {
        let shell: String?
        switch arguments.count {
        case 1 where arguments[0].hasPrefix("--generate-completion-script="):
            shell = String(arguments[0].dropFirst("--generate-completion-script=".count))
        case 2 where arguments[0] == "--generate-completion-script": shell = arguments[1]
        default: shell = nil
        }
        guard shell == "bash" else { return nil }
        return RootCommand.completionScript(for: .bash) + bashDefaultCommand
    }

    static let bashDefaultCommand = """

        # fastcapa: capture is the default command. Complete its options (and check's)
        # where the command is not named: at the start, and after EAL options and '--'.
        _fastcapa_default_command() {
            local -r cur="${2}"
            local command=capture
            local -i start=1 i
            case "${COMP_WORDS[1]}" in
            capture|check) command="${COMP_WORDS[1]}"; start=2 ;;
            \(RootCommand.toolNames.sorted().joined(separator: "|"))|help) _fastcapa "$@"; return ;;
            *) if (( COMP_CWORD == 1 )) && [[ "${cur}" != -* ]]; then _fastcapa "$@"; return; fi ;;
            esac
            for ((i = start; i < COMP_CWORD; i++)); do
                [[ "${COMP_WORDS[i]}" == -- ]] && start=$((i + 1)) && break
            done
            local -a words=(fastcapa "${command}" "${COMP_WORDS[@]:start:COMP_CWORD-start+1}")
            local -a COMP_WORDS=("${words[@]}")
            local -i COMP_CWORD=$((${#words[@]} - 1))
            local COMP_LINE="${words[*]}"
            local -i COMP_POINT=${#COMP_LINE}
            _fastcapa fastcapa "${cur}" "${words[COMP_CWORD - 1]}"
        }
        complete -o filenames -F _fastcapa_default_command fastcapa

        """
}
