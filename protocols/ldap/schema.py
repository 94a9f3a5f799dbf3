"""The Root DSE and the ``cn=subschema`` entry (reference §3.3), static.

The subschema lists the standard definitions of every attribute and object class the directory serves,
in RFC 4512 syntax, so ldap3's schema loader (``get_info=ALL``), SSSD and ldapsearch accept it. The
``ak-*`` attributes and the ``goauthentik.io/ldap/*`` classes get OIDs under an arc private to this
project (1.3.6.1.4.1.99999.1, documentation-style); clients only match them by name.
"""

from __future__ import annotations

from protocols.ldap import codec
from protocols.ldap.search import Entry

SUBSCHEMA_DN = "cn=subschema"
_AK = "1.3.6.1.4.1.99999.1"

SUPPORTED_CONTROLS = (codec.PAGED_RESULTS_OID,)
SUPPORTED_EXTENSIONS = (codec.STARTTLS_OID, codec.WHOAMI_OID)

_DIRECTORY_STRING = "1.3.6.1.4.1.1466.115.121.1.15"
_DN = "1.3.6.1.4.1.1466.115.121.1.12"
_IA5 = "1.3.6.1.4.1.1466.115.121.1.26"
_INTEGER = "1.3.6.1.4.1.1466.115.121.1.27"
_OID = "1.3.6.1.4.1.1466.115.121.1.38"
_TIME = "1.3.6.1.4.1.1466.115.121.1.24"
_BOOLEAN = "1.3.6.1.4.1.1466.115.121.1.7"

SYNTAXES = (
    f"( {_BOOLEAN} DESC 'Boolean' )", f"( {_DN} DESC 'Distinguished Name' )",
    f"( {_DIRECTORY_STRING} DESC 'Directory String' )", f"( {_TIME} DESC 'Generalized Time' )",
    f"( {_IA5} DESC 'IA5 String' )", f"( {_INTEGER} DESC 'INTEGER' )", f"( {_OID} DESC 'OID' )",
)
MATCHING_RULES = (
    f"( 2.5.13.0 NAME 'objectIdentifierMatch' SYNTAX {_OID} )",
    f"( 2.5.13.1 NAME 'distinguishedNameMatch' SYNTAX {_DN} )",
    f"( 2.5.13.2 NAME 'caseIgnoreMatch' SYNTAX {_DIRECTORY_STRING} )",
    f"( 2.5.13.14 NAME 'integerMatch' SYNTAX {_INTEGER} )",
    f"( 2.5.13.27 NAME 'generalizedTimeMatch' SYNTAX {_TIME} )",
    f"( 1.3.6.1.4.1.1466.109.114.2 NAME 'caseIgnoreIA5Match' SYNTAX {_IA5} )",
)


def _at(oid: str, name: str, syntax: str, *, equality: str = "caseIgnoreMatch", single: bool = False,
        operational: bool = False) -> str:
    text = f"( {oid} NAME '{name}' EQUALITY {equality} SYNTAX {syntax}"
    if single:
        text += " SINGLE-VALUE"
    if operational:
        text += " NO-USER-MODIFICATION USAGE directoryOperation"
    return text + " )"


ATTRIBUTE_TYPES = (
    _at("2.5.4.0", "objectClass", _OID, equality="objectIdentifierMatch"),
    _at("2.5.4.3", "cn", _DIRECTORY_STRING),
    _at("2.5.4.4", "sn", _DIRECTORY_STRING),
    _at("2.5.4.41", "name", _DIRECTORY_STRING),
    _at("2.5.4.11", "ou", _DIRECTORY_STRING),
    _at("2.5.4.31", "member", _DN, equality="distinguishedNameMatch"),
    _at("2.5.4.50", "uniqueMember", _DN, equality="distinguishedNameMatch"),
    _at("2.16.840.1.113730.3.1.241", "displayName", _DIRECTORY_STRING, single=True),
    _at("0.9.2342.19200300.100.1.1", "uid", _DIRECTORY_STRING),
    _at("0.9.2342.19200300.100.1.3", "mail", _IA5, equality="caseIgnoreIA5Match"),
    _at("0.9.2342.19200300.100.1.25", "dc", _IA5, equality="caseIgnoreIA5Match", single=True),
    _at("1.3.6.1.1.1.1.0", "uidNumber", _INTEGER, equality="integerMatch", single=True),
    _at("1.3.6.1.1.1.1.1", "gidNumber", _INTEGER, equality="integerMatch", single=True),
    _at("1.3.6.1.1.1.1.3", "homeDirectory", _IA5, equality="caseIgnoreIA5Match", single=True),
    _at("1.2.840.113556.1.2.102", "memberOf", _DN, equality="distinguishedNameMatch"),
    _at("1.2.840.113556.1.4.221", "sAMAccountName", _DIRECTORY_STRING, single=True),
    _at("2.5.4.49", "distinguishedName", _DN, equality="distinguishedNameMatch", single=True),
    _at("2.5.18.1", "createTimestamp", _TIME, equality="generalizedTimeMatch", single=True, operational=True),
    _at("2.5.18.2", "modifyTimestamp", _TIME, equality="generalizedTimeMatch", single=True, operational=True),
    _at("1.3.6.1.4.1.42.2.27.8.1.16", "pwdChangedTime", _TIME, equality="generalizedTimeMatch", single=True,
        operational=True),
    _at("1.3.6.1.1.20", "entryDN", _DN, equality="distinguishedNameMatch", single=True, operational=True),
    _at("2.5.18.10", "subschemaSubentry", _DN, equality="distinguishedNameMatch", single=True, operational=True),
    # the Root DSE's and the subschema's own attributes (RFC 4512 §4.2, §5.1): ldap3 checks requested names
    # against the schema it loaded, so its second schema read fails without these
    _at("2.5.21.5", "attributeTypes", _DIRECTORY_STRING, equality="objectIdentifierMatch", operational=True),
    _at("2.5.21.6", "objectClasses", _DIRECTORY_STRING, equality="objectIdentifierMatch", operational=True),
    _at("2.5.21.4", "matchingRules", _DIRECTORY_STRING, equality="objectIdentifierMatch", operational=True),
    _at("2.5.21.8", "matchingRuleUse", _DIRECTORY_STRING, equality="objectIdentifierMatch", operational=True),
    _at("1.3.6.1.4.1.1466.101.120.16", "ldapSyntaxes", _DIRECTORY_STRING, equality="objectIdentifierMatch",
        operational=True),
    _at("2.5.21.2", "dITContentRules", _DIRECTORY_STRING, equality="objectIdentifierMatch", operational=True),
    _at("2.5.21.1", "dITStructureRules", _DIRECTORY_STRING, equality="integerMatch", operational=True),
    _at("2.5.21.7", "nameForms", _DIRECTORY_STRING, equality="objectIdentifierMatch", operational=True),
    _at("1.3.6.1.4.1.1466.101.120.5", "namingContexts", _DN, equality="distinguishedNameMatch", operational=True),
    _at("1.3.6.1.4.1.1466.101.120.6", "altServer", _IA5, equality="caseIgnoreIA5Match", operational=True),
    _at("1.3.6.1.4.1.1466.101.120.7", "supportedExtension", _OID, equality="objectIdentifierMatch",
        operational=True),
    _at("1.3.6.1.4.1.1466.101.120.13", "supportedControl", _OID, equality="objectIdentifierMatch",
        operational=True),
    _at("1.3.6.1.4.1.1466.101.120.14", "supportedSASLMechanisms", _DIRECTORY_STRING, operational=True),
    _at("1.3.6.1.4.1.1466.101.120.15", "supportedLDAPVersion", _INTEGER, equality="integerMatch",
        operational=True),
    _at("1.3.6.1.4.1.4203.1.3.5", "supportedFeatures", _OID, equality="objectIdentifierMatch", operational=True),
    _at("1.3.6.1.1.4", "vendorName", _DIRECTORY_STRING, single=True, operational=True),
    _at("1.3.6.1.1.5", "vendorVersion", _DIRECTORY_STRING, single=True, operational=True),
    _at("1.2.840.113556.1.4.1998", "rootDomainNamingContext", _DN, equality="distinguishedNameMatch",
        single=True, operational=True),
    _at("2.5.4.13", "description", _DIRECTORY_STRING),
    _at(f"{_AK}.1", "ak-active", _BOOLEAN, single=True),
    _at(f"{_AK}.2", "ak-superuser", _BOOLEAN, single=True),
    _at(f"{_AK}.3", "commonName", _DIRECTORY_STRING),
)

OBJECT_CLASSES = (
    "( 2.5.6.0 NAME 'top' ABSTRACT MUST objectClass )",
    "( 2.5.6.6 NAME 'person' SUP top STRUCTURAL MUST ( sn $ cn ) MAY ( displayName $ name ) )",
    "( 2.5.6.7 NAME 'organizationalPerson' SUP person STRUCTURAL )",
    "( 2.16.840.1.113730.3.2.2 NAME 'inetOrgPerson' SUP organizationalPerson STRUCTURAL MAY ( mail $ uid ) )",
    "( 1.2.840.113556.1.5.9 NAME 'user' SUP organizationalPerson STRUCTURAL MAY ( sAMAccountName $ memberOf ) )",
    "( 1.3.6.1.1.1.2.0 NAME 'posixAccount' SUP top AUXILIARY MUST ( cn $ uid $ uidNumber $ gidNumber $ "
    "homeDirectory ) )",
    "( 1.3.6.1.1.1.2.2 NAME 'posixGroup' SUP top AUXILIARY MUST ( cn $ gidNumber ) MAY member )",
    "( 1.2.840.113556.1.5.8 NAME 'group' SUP top STRUCTURAL MUST cn MAY ( member $ memberOf $ sAMAccountName ) )",
    "( 2.5.6.9 NAME 'groupOfNames' SUP top STRUCTURAL MUST cn MAY member )",
    "( 2.5.6.17 NAME 'groupOfUniqueNames' SUP top STRUCTURAL MUST cn MAY uniqueMember )",
    "( 2.16.840.1.113730.3.2.4 NAME 'nsContainer' SUP top STRUCTURAL MUST cn )",
    "( 1.3.6.1.4.1.1466.344 NAME 'dcObject' SUP top AUXILIARY MUST dc )",
    "( 2.5.20.1 NAME 'subschema' AUXILIARY MAY ( attributeTypes $ objectClasses $ ldapSyntaxes $ "
    "matchingRules ) )",
    f"( {_AK}.10 NAME 'goauthentik.io/ldap/user' SUP top AUXILIARY MAY ( ak-active $ ak-superuser ) )",
    f"( {_AK}.11 NAME 'goauthentik.io/ldap/group' SUP top AUXILIARY MAY ak-superuser )",
    f"( {_AK}.12 NAME 'goauthentik.io/ldap/virtual-group' SUP top AUXILIARY )",
)


def subschema() -> Entry:
    return Entry(SUBSCHEMA_DN, [
        ("objectClass", ["top", "subschema"]), ("cn", ["subschema"]),
        ("ldapSyntaxes", list(SYNTAXES)), ("matchingRules", list(MATCHING_RULES)),
        ("attributeTypes", list(ATTRIBUTE_TYPES)), ("objectClasses", list(OBJECT_CLASSES)),
        ("createTimestamp", ["20240101000000Z"]), ("modifyTimestamp", ["20240101000000Z"]),
    ], operational_all=True)


def root_dse(base_dns: list[str], version: str, dn: str = "") -> Entry:
    """The Root DSE (base ``""``); under a provider's base DN the same attributes describe the base entry."""
    contexts = [b.lower() for b in base_dns]
    attributes = [
        ("objectClass", ["top"] + (["domain", "dcObject"] if dn else [])),
        ("entryDN", [dn]),
        ("supportedLDAPVersion", ["3"]),
        ("supportedControl", list(SUPPORTED_CONTROLS)),
        ("supportedExtension", list(SUPPORTED_EXTENSIONS)),
        ("supportedSASLMechanisms", []),
        ("subschemaSubentry", [SUBSCHEMA_DN]),
        ("namingContexts", contexts),
        ("rootDomainNamingContext", contexts[:1]),
        ("vendorName", ["goauthentik.io"]),
        ("vendorVersion", [f"authentik LDAP Outpost Version {version} (Gatehouse)"]),
    ]
    return Entry(dn, [(n, v) for n, v in attributes if v], operational_all=True)
