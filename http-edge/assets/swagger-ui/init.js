// Portcullis' API reference: Swagger UI over this server's own
// /openapi.json. Every asset comes from this server; nothing is fetched
// from anywhere else (no validator badge, no external fonts).
window.addEventListener('load', function () {
  window.ui = SwaggerUIBundle({
    url: '/openapi.json',
    dom_id: '#swagger-ui',
    deepLinking: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    layout: 'BaseLayout',
    persistAuthorization: false,
    displayRequestDuration: true,
  });
});
