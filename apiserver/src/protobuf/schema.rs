//! The protobuf field numbers of the Kubernetes types kubectl's generators send, as
//! `k8s.io/api` and `k8s.io/apimachinery` number them in their `generated.proto` files, with
//! the JSON name of each field. Structs Go embeds (a Probe's handler, a Volume's source, a key
//! selector's object reference) are fields of their own on the wire and [`Ty::Inline`] here.

/// How a field's value becomes JSON.
#[derive(Debug, Clone, Copy)]
pub(super) enum Ty {
    /// A string.
    Str,
    /// An int32 or int64.
    Int,
    /// A bool.
    Bool,
    /// A nested message.
    Msg(&'static [Field]),
    /// An embedded message whose fields belong to the enclosing object in JSON.
    Inline(&'static [Field]),
    /// `intstr.IntOrString`: a JSON number or string.
    IntOrStr,
    /// `resource.Quantity`: its string form.
    Quantity,
    /// `map<string, string>`.
    MapStr,
    /// `map<string, bytes>`, base64 in JSON.
    MapBytes,
    /// `map<string, Quantity>`.
    MapQuantity,
    /// Read-only or server-set (status, timestamps, managedFields): dropped.
    Ignored,
}

/// One field of a message.
#[derive(Debug)]
pub(super) struct Field {
    /// Its protobuf number.
    pub number: u32,
    /// Its JSON name.
    pub name: &'static str,
    /// Its type.
    pub ty: Ty,
    /// `repeated`.
    pub list: bool,
    /// A pointer in Go: present means set, so a zero value is kept (`replicas: 0`).
    pub keep_zero: bool,
}

const fn f(number: u32, name: &'static str, ty: Ty) -> Field {
    Field {
        number,
        name,
        ty,
        list: false,
        keep_zero: false,
    }
}

const fn list(number: u32, name: &'static str, ty: Ty) -> Field {
    Field {
        list: true,
        ..f(number, name, ty)
    }
}

const fn ptr(number: u32, name: &'static str, ty: Ty) -> Field {
    Field {
        keep_zero: true,
        ..f(number, name, ty)
    }
}

use Ty::*;

/// The kinds whose protobuf bodies are decoded: (apiVersion, kind, schema).
pub(super) const KINDS: &[(&str, &str, &[Field])] = &[
    ("v1", "Namespace", NAMESPACE),
    ("v1", "ConfigMap", CONFIG_MAP),
    ("v1", "Secret", SECRET),
    ("v1", "Service", SERVICE),
    ("v1", "Pod", POD),
    ("apps/v1", "Deployment", DEPLOYMENT),
    ("apps/v1", "ReplicaSet", REPLICA_SET),
];

const OWNER_REFERENCE: &[Field] = &[
    f(5, "apiVersion", Str),
    f(1, "kind", Str),
    f(3, "name", Str),
    f(4, "uid", Str),
    ptr(6, "controller", Bool),
    ptr(7, "blockOwnerDeletion", Bool),
];

const OBJECT_META: &[Field] = &[
    f(1, "name", Str),
    f(2, "generateName", Str),
    f(3, "namespace", Str),
    f(4, "selfLink", Ignored),
    f(5, "uid", Str),
    f(6, "resourceVersion", Str),
    f(7, "generation", Ignored),
    f(8, "creationTimestamp", Ignored),
    f(9, "deletionTimestamp", Ignored),
    f(10, "deletionGracePeriodSeconds", Ignored),
    f(11, "labels", MapStr),
    f(12, "annotations", MapStr),
    list(13, "ownerReferences", Msg(OWNER_REFERENCE)),
    list(14, "finalizers", Str),
    f(17, "managedFields", Ignored),
];

const NAMESPACE: &[Field] = &[
    f(1, "metadata", Msg(OBJECT_META)),
    f(2, "spec", Msg(&[list(1, "finalizers", Str)])),
    f(3, "status", Ignored),
];

const CONFIG_MAP: &[Field] = &[
    f(1, "metadata", Msg(OBJECT_META)),
    f(2, "data", MapStr),
    f(3, "binaryData", MapBytes),
    ptr(4, "immutable", Bool),
];

const SECRET: &[Field] = &[
    f(1, "metadata", Msg(OBJECT_META)),
    f(2, "data", MapBytes),
    f(3, "type", Str),
    f(4, "stringData", MapStr),
    ptr(5, "immutable", Bool),
];

const LABEL_SELECTOR: &[Field] = &[
    f(1, "matchLabels", MapStr),
    list(
        2,
        "matchExpressions",
        Msg(&[
            f(1, "key", Str),
            f(2, "operator", Str),
            list(3, "values", Str),
        ]),
    ),
];

const LOCAL_OBJECT_REFERENCE: &[Field] = &[f(1, "name", Str)];

const KEY_SELECTOR: &[Field] = &[
    f(1, "localObjectReference", Inline(LOCAL_OBJECT_REFERENCE)),
    f(2, "key", Str),
    ptr(3, "optional", Bool),
];

const ENV_SOURCE: &[Field] = &[
    f(1, "localObjectReference", Inline(LOCAL_OBJECT_REFERENCE)),
    ptr(2, "optional", Bool),
];

const ENV_VAR: &[Field] = &[
    f(1, "name", Str),
    f(2, "value", Str),
    f(
        3,
        "valueFrom",
        Msg(&[
            f(
                1,
                "fieldRef",
                Msg(&[f(1, "apiVersion", Str), f(2, "fieldPath", Str)]),
            ),
            f(
                2,
                "resourceFieldRef",
                Msg(&[
                    f(1, "containerName", Str),
                    f(2, "resource", Str),
                    f(3, "divisor", Quantity),
                ]),
            ),
            f(3, "configMapKeyRef", Msg(KEY_SELECTOR)),
            f(4, "secretKeyRef", Msg(KEY_SELECTOR)),
        ]),
    ),
];

const PROBE: &[Field] = &[
    f(
        1,
        "handler",
        Inline(&[
            f(1, "exec", Msg(&[list(1, "command", Str)])),
            f(
                2,
                "httpGet",
                Msg(&[
                    f(1, "path", Str),
                    f(2, "port", IntOrStr),
                    f(3, "host", Str),
                    f(4, "scheme", Str),
                    list(
                        5,
                        "httpHeaders",
                        Msg(&[f(1, "name", Str), f(2, "value", Str)]),
                    ),
                ]),
            ),
            f(
                3,
                "tcpSocket",
                Msg(&[f(1, "port", IntOrStr), f(2, "host", Str)]),
            ),
            f(4, "grpc", Msg(&[f(1, "port", Int), ptr(2, "service", Str)])),
        ]),
    ),
    f(2, "initialDelaySeconds", Int),
    f(3, "timeoutSeconds", Int),
    f(4, "periodSeconds", Int),
    f(5, "successThreshold", Int),
    f(6, "failureThreshold", Int),
    ptr(7, "terminationGracePeriodSeconds", Int),
];

const CONTAINER: &[Field] = &[
    f(1, "name", Str),
    f(2, "image", Str),
    list(3, "command", Str),
    list(4, "args", Str),
    f(5, "workingDir", Str),
    list(
        6,
        "ports",
        Msg(&[
            f(1, "name", Str),
            f(2, "hostPort", Int),
            f(3, "containerPort", Int),
            f(4, "protocol", Str),
            f(5, "hostIP", Str),
        ]),
    ),
    list(7, "env", Msg(ENV_VAR)),
    f(
        8,
        "resources",
        Msg(&[f(1, "limits", MapQuantity), f(2, "requests", MapQuantity)]),
    ),
    list(
        9,
        "volumeMounts",
        Msg(&[
            f(1, "name", Str),
            f(2, "readOnly", Bool),
            f(3, "mountPath", Str),
            f(4, "subPath", Str),
            ptr(5, "mountPropagation", Str),
            f(6, "subPathExpr", Str),
        ]),
    ),
    ptr(10, "livenessProbe", Msg(PROBE)),
    ptr(11, "readinessProbe", Msg(PROBE)),
    f(13, "terminationMessagePath", Str),
    f(14, "imagePullPolicy", Str),
    f(16, "stdin", Bool),
    f(17, "stdinOnce", Bool),
    f(18, "tty", Bool),
    list(
        19,
        "envFrom",
        Msg(&[
            f(1, "prefix", Str),
            ptr(2, "configMapRef", Msg(ENV_SOURCE)),
            ptr(3, "secretRef", Msg(ENV_SOURCE)),
        ]),
    ),
    f(20, "terminationMessagePolicy", Str),
    ptr(22, "startupProbe", Msg(PROBE)),
];

const KEY_TO_PATH: &[Field] = &[f(1, "key", Str), f(2, "path", Str), ptr(3, "mode", Int)];

const VOLUME: &[Field] = &[
    f(1, "name", Str),
    f(
        2,
        "volumeSource",
        Inline(&[
            ptr(
                1,
                "hostPath",
                Msg(&[f(1, "path", Str), ptr(2, "type", Str)]),
            ),
            ptr(
                2,
                "emptyDir",
                Msg(&[f(1, "medium", Str), ptr(2, "sizeLimit", Quantity)]),
            ),
            ptr(
                6,
                "secret",
                Msg(&[
                    f(1, "secretName", Str),
                    list(2, "items", Msg(KEY_TO_PATH)),
                    ptr(3, "defaultMode", Int),
                    ptr(4, "optional", Bool),
                ]),
            ),
            ptr(
                10,
                "persistentVolumeClaim",
                Msg(&[f(1, "claimName", Str), f(2, "readOnly", Bool)]),
            ),
            ptr(
                19,
                "configMap",
                Msg(&[
                    f(1, "localObjectReference", Inline(LOCAL_OBJECT_REFERENCE)),
                    list(2, "items", Msg(KEY_TO_PATH)),
                    ptr(3, "defaultMode", Int),
                    ptr(4, "optional", Bool),
                ]),
            ),
        ]),
    ),
];

const POD_SPEC: &[Field] = &[
    list(1, "volumes", Msg(VOLUME)),
    list(2, "containers", Msg(CONTAINER)),
    f(3, "restartPolicy", Str),
    ptr(4, "terminationGracePeriodSeconds", Int),
    ptr(5, "activeDeadlineSeconds", Int),
    f(6, "dnsPolicy", Str),
    f(7, "nodeSelector", MapStr),
    f(8, "serviceAccountName", Str),
    f(9, "serviceAccount", Str),
    f(10, "nodeName", Str),
    f(11, "hostNetwork", Bool),
    f(12, "hostPID", Bool),
    f(13, "hostIPC", Bool),
    list(15, "imagePullSecrets", Msg(LOCAL_OBJECT_REFERENCE)),
    f(16, "hostname", Str),
    f(17, "subdomain", Str),
    f(19, "schedulerName", Str),
    list(20, "initContainers", Msg(CONTAINER)),
    ptr(21, "automountServiceAccountToken", Bool),
    ptr(27, "shareProcessNamespace", Bool),
    ptr(30, "enableServiceLinks", Bool),
];

const POD_TEMPLATE: &[Field] = &[
    f(1, "metadata", Msg(OBJECT_META)),
    f(2, "spec", Msg(POD_SPEC)),
];

const POD: &[Field] = &[
    f(1, "metadata", Msg(OBJECT_META)),
    f(2, "spec", Msg(POD_SPEC)),
    f(3, "status", Ignored),
];

const SERVICE: &[Field] = &[
    f(1, "metadata", Msg(OBJECT_META)),
    f(
        2,
        "spec",
        Msg(&[
            list(
                1,
                "ports",
                Msg(&[
                    f(1, "name", Str),
                    f(2, "protocol", Str),
                    f(3, "port", Int),
                    f(4, "targetPort", IntOrStr),
                    f(5, "nodePort", Int),
                    ptr(6, "appProtocol", Str),
                ]),
            ),
            f(2, "selector", MapStr),
            f(3, "clusterIP", Str),
            f(4, "type", Str),
            list(5, "externalIPs", Str),
            f(7, "sessionAffinity", Str),
            f(10, "externalName", Str),
            f(11, "externalTrafficPolicy", Str),
            f(13, "publishNotReadyAddresses", Bool),
            ptr(17, "ipFamilyPolicy", Str),
            list(18, "clusterIPs", Str),
            list(19, "ipFamilies", Str),
            ptr(20, "allocateLoadBalancerNodePorts", Bool),
            ptr(22, "internalTrafficPolicy", Str),
        ]),
    ),
    f(3, "status", Ignored),
];

const DEPLOYMENT: &[Field] = &[
    f(1, "metadata", Msg(OBJECT_META)),
    f(
        2,
        "spec",
        Msg(&[
            ptr(1, "replicas", Int),
            ptr(2, "selector", Msg(LABEL_SELECTOR)),
            f(3, "template", Msg(POD_TEMPLATE)),
            f(
                4,
                "strategy",
                Msg(&[
                    f(1, "type", Str),
                    ptr(
                        2,
                        "rollingUpdate",
                        Msg(&[
                            ptr(1, "maxUnavailable", IntOrStr),
                            ptr(2, "maxSurge", IntOrStr),
                        ]),
                    ),
                ]),
            ),
            f(5, "minReadySeconds", Int),
            ptr(6, "revisionHistoryLimit", Int),
            f(7, "paused", Bool),
            ptr(9, "progressDeadlineSeconds", Int),
        ]),
    ),
    f(3, "status", Ignored),
];

const REPLICA_SET: &[Field] = &[
    f(1, "metadata", Msg(OBJECT_META)),
    f(
        2,
        "spec",
        Msg(&[
            ptr(1, "replicas", Int),
            ptr(2, "selector", Msg(LABEL_SELECTOR)),
            f(3, "template", Msg(POD_TEMPLATE)),
            f(4, "minReadySeconds", Int),
        ]),
    ),
    f(3, "status", Ignored),
];
