{{/* The image of every container (install-cni, terway, policy): terway.image.repository:tag
(tag defaults to appVersion). */}}
{{- define "terway-py.image" -}}
{{ .Values.terway.image.repository }}:{{ .Values.terway.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/* The Secret mounted at /var/addon: ours when an access key is given, else credentialSecret. */}}
{{- define "terway-py.credentialSecret" -}}
{{- if .Values.terway.accessKey -}}terway-credentials{{- else -}}{{ .Values.terway.credentialSecret }}{{- end -}}
{{- end -}}

{{/* Values this port cannot honour: refuse to render rather than deploy something else. */}}
{{- define "terway-py.validate" -}}
{{- $t := .Values.terway -}}
{{- if $t.enableDatapathV2 -}}
{{- fail "terway.enableDatapathV2: upstream's eBPF datapath (datapathv2) is not implemented by terway-py; use enableIPvlan or the default veth datapath" -}}
{{- end -}}
{{- if not (kindIs "bool" $t.enableNetworkPolicy) -}}
{{- fail (printf "terway.enableNetworkPolicy: true or false unquoted, not the %s %q (a non-empty string would turn NetworkPolicy on)" (kindOf $t.enableNetworkPolicy) (toString $t.enableNetworkPolicy)) -}}
{{- end -}}
{{- if not (has $t.daemonMode (list "ENIMultiIP" "ENIOnly")) -}}
{{- fail (printf "terway.daemonMode: %q is not ENIMultiIP or ENIOnly" $t.daemonMode) -}}
{{- end -}}
{{- if not (has $t.metricsAddress (list "127.0.0.1" "0.0.0.0")) -}}
{{- fail (printf "terway.metricsAddress: %q is not 127.0.0.1 or 0.0.0.0 (the probes ask 127.0.0.1)" $t.metricsAddress) -}}
{{- end -}}
{{- if and $t.accessKey (not $t.accessSecret) -}}
{{- fail "terway.accessSecret: required when terway.accessKey is set" -}}
{{- end -}}
{{- if and $t.accessSecret (not $t.accessKey) -}}
{{- fail "terway.accessKey: required when terway.accessSecret is set" -}}
{{- end -}}
{{- end -}}

{{/* eni_conf as JSON: the keys above, then terway.eniConf over them. No secret in it. */}}
{{- define "terway-py.eniConf" -}}
{{- $t := .Values.terway -}}
{{- $conf := dict "version" "1" "daemon_mode" $t.daemonMode "ip_stack" $t.ipStack "max_pool_size" $t.maxPoolSize "min_pool_size" $t.minPoolSize "vswitches" $t.vSwitchIDs "security_groups" $t.securityGroupIDs "service_cidr" $t.serviceCIDR "eni_tags" $t.eniTags "vswitch_selection_policy" $t.vSwitchSelectionPolicy -}}
{{- if $t.accessKey -}}
{{- $_ := set $conf "credential_path" "/var/addon/token-config" -}}
{{- else if $t.credentialPath -}}
{{- $_ := set $conf "credential_path" $t.credentialPath -}}
{{- end -}}
{{- $conf = mergeOverwrite $conf (deepCopy $t.eniConf) -}}
{{- toPrettyJson $conf -}}
{{- end -}}
