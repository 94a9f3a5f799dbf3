"""Protect https://whoami.example.com with forward auth, through authentik's own Python client.

    pip install authentik-client==2026.8.5
    AUTHENTIK_HOST=https://auth.example.com AUTHENTIK_TOKEN=<API token> python forward_auth_app.py

Creates a proxy provider (forward auth, single application), an application for it, and assigns the provider
to the embedded outpost (the one ``ak server`` runs). Run it again and it changes nothing.
"""

import os

import authentik_client as ak

NAME, SLUG, EXTERNAL_HOST = "whoami", "whoami", "https://whoami.example.com"


def main(host: str, token: str) -> ak.Application:
    api = ak.ApiClient(ak.Configuration(host=f"{host}/api/v3", access_token=token))
    flows, providers, core, outposts = ak.FlowsApi(api), ak.ProvidersApi(api), ak.CoreApi(api), ak.OutpostsApi(api)

    def flow(slug: str) -> ak.Flow:
        return flows.flows_instances_list(slug=slug).results[0]

    found = providers.providers_proxy_list(name__iexact=NAME).results
    provider = found[0] if found else providers.providers_proxy_create(ak.ProxyProviderRequest(
        name=NAME, external_host=EXTERNAL_HOST, mode=ak.ProxyMode.FORWARD_SINGLE,
        authorization_flow=flow("default-provider-authorization-implicit-consent").pk,
        invalidation_flow=flow("default-provider-invalidation-flow").pk))

    apps = core.core_applications_list(slug=SLUG).results
    app = apps[0] if apps else core.core_applications_create(
        ak.ApplicationRequest(name="Who Am I", slug=SLUG, provider=provider.pk))

    embedded = outposts.outposts_instances_list(managed__iexact="goauthentik.io/outposts/embedded").results[0]
    if provider.pk not in embedded.providers:
        outposts.outposts_instances_partial_update(embedded.pk, ak.PatchedOutpostRequest(
            providers=[*embedded.providers, provider.pk]))
    return app


if __name__ == "__main__":
    application = main(os.environ["AUTHENTIK_HOST"].rstrip("/"), os.environ["AUTHENTIK_TOKEN"])
    print(f"{application.name}: {application.launch_url}")
