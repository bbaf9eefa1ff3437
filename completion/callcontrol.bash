# bash completion for callcontrol(1) and its compatibility name
# call-control-cli. Installed by the package in
# /usr/share/bash-completion/completions/.

_callcontrol() {
	local cur prev words cword
	_init_completion 2>/dev/null || {
		cur=${COMP_WORDS[COMP_CWORD]}
		prev=${COMP_WORDS[COMP_CWORD-1]}
		words=("${COMP_WORDS[@]}")
		cword=$COMP_CWORD
	}
	local commands="sessions session terminate parties stats debits reload list show help"
	local common="--runtime-dir --config-dir --socket --json -j --timeout --help"

	case $prev in
	--runtime-dir | --config-dir)
		COMPREPLY=($(compgen -d -- "$cur"))
		return
		;;
	--socket)
		COMPREPLY=($(compgen -f -- "$cur"))
		return
		;;
	--timeout)
		COMPREPLY=($(compgen -W "1 5 10 30 500ms 5s 1m" -- "$cur"))
		return
		;;
	--state)
		COMPREPLY=($(compgen -W "pending in-progress" -- "$cur"))
		return
		;;
	esac

	# The command is the first word that is not an option or its value.
	local i cmd= skip=
	for ((i = 1; i < cword; i++)); do
		if [ -n "$skip" ]; then
			skip=
			continue
		fi
		case ${words[i]} in
		--runtime-dir | --config-dir | --socket | --timeout | --state) skip=1 ;;
		-*) ;;
		*)
			cmd=${words[i]}
			break
			;;
		esac
	done

	if [ -z "$cmd" ]; then
		COMPREPLY=($(compgen -W "$commands $common --version" -- "$cur"))
		return
	fi
	case $cmd in
	sessions | list) COMPREPLY=($(compgen -W "$common --state" -- "$cur")) ;;
	debits)
		if [ "$prev" = debits ]; then
			COMPREPLY=($(compgen -W "retry reroute drop $common" -- "$cur"))
		else
			COMPREPLY=($(compgen -W "$common --yes" -- "$cur"))
		fi
		;;
	help) COMPREPLY=($(compgen -W "$commands" -- "$cur")) ;;
	*) COMPREPLY=($(compgen -W "$common" -- "$cur")) ;;
	esac
}
complete -F _callcontrol callcontrol call-control-cli
