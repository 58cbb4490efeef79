# Only the app's own scripts, styles and images; htmx is served from our static files too.
STRICT_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
# Django's admin still sets a few inline styles.
ADMIN_POLICY = STRICT_POLICY.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        self.admin_prefix = "/admin/"

    def __call__(self, request):
        response = self.get_response(request)
        if "Content-Security-Policy" not in response:
            is_admin = request.path.startswith(self.admin_prefix)
            response["Content-Security-Policy"] = ADMIN_POLICY if is_admin else STRICT_POLICY
        return response
