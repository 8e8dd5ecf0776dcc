"""Text of the phone page in English and Spanish, and how the page picks its language.

The API localises its own answers (``message``, ``display_name``); this module only holds the
page's words (buttons, hints, status lines). Strings the browser script needs are sent to it as
a JSON data block, so every visible word lives here. A bundle's card may replace any of them
for its own site (card "text", site_text.py).
"""

from __future__ import annotations

from flask import Request

LANGS = ("en", "es")
DEFAULT_LANG = "en"
COOKIE = "lang"

STRINGS: dict[str, dict[str, str]] = {
    "en": {
        "lang_name": "English",
        "title": "US banknote identifier",
        "short_name": "USBills",
        "intro": (
            "Point your phone's camera at a US bill. The page tells you its value out loud, "
            "on screen, or with a private vibration pattern."
        ),
        "skip": "Skip to the answer",
        "canvas_heading": "Draw a digit",
        "canvas_label": "Drawing area: draw one digit with your finger or the mouse",
        "canvas_read": "Read the digit",
        "canvas_clear": "Clear",
        "canvas_empty": "Draw a digit first.",
        "switch_label": "Language",
        "answer_heading": "Answer",
        "answer_none": "No answer yet.",
        "working": "Identifying…",
        "candidates_heading": "It might be:",
        "scan_heading": "Scan with the camera",
        "scan_start": "Start scanning",
        "scan_stop": "Stop scanning",
        "scan_again": "Say it again",
        "torch": "Light",
        "autostart": "Start scanning when the page opens",
        "local_only": "On this phone only: never send pictures",
        "local_only_help": (
            "Where this browser can, notes are recognised on the phone itself and no picture "
            "leaves it. With this on, pictures are never sent, even where it cannot."
        ),
        "local_unavailable": (
            "This phone cannot recognise notes itself. Turn off “On this phone only” below "
            "to use the site."
        ),
        "video_label": "Camera view",
        "status_off": "Camera off.",
        "status_starting": "Starting the camera…",
        "status_scanning": "Scanning. Hold a bill about 20 cm (8 inches) from the camera.",
        "status_paused": "Paused. Show another bill.",
        "spoken_start": "Camera on. Hold a bill in front of the camera.",
        "camera_denied": (
            "Camera access was refused. Allow the camera for this site in the browser "
            "settings, or take a photo below."
        ),
        "camera_missing": "No camera was found. Take or choose a photo below.",
        "camera_insecure": (
            "The camera needs a secure (https) connection. Take or choose a photo below."
        ),
        "camera_error": "The camera could not start. Take or choose a photo below.",
        "photo_heading": "Identify a photo",
        "photo_label": "Take or choose a photo of a bill",
        "photo_drop": "You can also drop a photo here.",
        "photo_submit": "Identify",
        "photo_preview_alt": "The photo being identified",
        "photo_not_image": "That file is not a picture. Choose a photo of a bill.",
        "hints_heading": "Tips",
        "hint_light": "Try more light.",
        "hint_steady": "Hold the phone steadier.",
        "hint_more": "Show more of the note: at least half of it, flat, filling the view.",
        "hint_closer": "Move the phone closer to the note.",
        "settings_heading": "Settings",
        "answers_legend": "How answers are given",
        "mode_speak": "Speak the answer",
        "mode_vibrate": "Vibrate only (private)",
        "mode_silent": "Screen only (for screen readers)",
        "vibrate_help": (
            "Vibration: 1 pulse for $1, 2 for $2, 3 for $5, 4 for $10, 5 for $20, 6 for $50, "
            "7 for $100. Two long buzzes: not identified. One very short buzz: scanning. "
            "One long buzz: no connection."
        ),
        "vibrate_unsupported": "This browser cannot vibrate, so answers are spoken.",
        "error_busy": "The service is busy. Trying again…",
        "error_network": "No connection to the service. Check your connection.",
        "offline": "No connection. Retrying…",
        "online": "Connected again. Scanning.",
        "no_note": "No banknote found.",
        "may_be": "Not sure. It may be {name}.",
        "may_be_two": "Not sure. It may be {a} or {b}.",
        "error_generic": "Something went wrong: {message}",
        "nojs": (
            "JavaScript is off, so the camera scan is not available. "
            "You can still identify a photo."
        ),
        "error_no_file": "No photo was sent. Choose a photo of a bill.",
        "error_too_large": "That photo is too large (the limit is {mb} MB).",
        "result_title": "Result",
        "result_another": "Identify another photo",
        "result_back": "Back to the scanner",
        "confidence": "{name}: {pct} %",
        "footer_model": "Model {name} {version}",
        "footer_api": "API documentation",
        "footer_privacy": (
            "Where this browser can, notes are recognised on the phone and no picture is "
            "sent. Otherwise pictures are sent to this site only to be identified."
        ),
    },
    "es": {
        "lang_name": "Español",
        "title": "Identificador de billetes de EE. UU.",
        "short_name": "Billetes",
        "intro": (
            "Apunte la cámara del teléfono a un billete de EE. UU. La página le dice su valor "
            "en voz alta, en la pantalla o con una vibración privada."
        ),
        "skip": "Ir a la respuesta",
        "canvas_heading": "Dibuje un dígito",
        "canvas_label": "Área de dibujo: dibuje un dígito con el dedo o el ratón",
        "canvas_read": "Leer el dígito",
        "canvas_clear": "Borrar",
        "canvas_empty": "Dibuje un dígito primero.",
        "switch_label": "Idioma",
        "answer_heading": "Respuesta",
        "answer_none": "Todavía no hay respuesta.",
        "working": "Identificando…",
        "candidates_heading": "Podría ser:",
        "scan_heading": "Escanear con la cámara",
        "scan_start": "Empezar a escanear",
        "scan_stop": "Detener el escaneo",
        "scan_again": "Repetir",
        "torch": "Linterna",
        "autostart": "Empezar a escanear al abrir la página",
        "local_only": "Solo en este teléfono: no enviar nunca imágenes",
        "local_only_help": (
            "Donde este navegador puede, los billetes se reconocen en el propio teléfono y "
            "ninguna imagen sale de él. Con esta opción, las imágenes no se envían nunca, "
            "aunque no pueda."
        ),
        "local_unavailable": (
            "Este teléfono no puede reconocer billetes por sí mismo. Desactive “Solo en este "
            "teléfono” abajo para usar el sitio."
        ),
        "video_label": "Imagen de la cámara",
        "status_off": "Cámara apagada.",
        "status_starting": "Encendiendo la cámara…",
        "status_scanning": (
            "Escaneando. Sostenga un billete a unos 20 cm (8 pulgadas) de la cámara."
        ),
        "status_paused": "En pausa. Muestre otro billete.",
        "spoken_start": "Cámara encendida. Sostenga un billete delante de la cámara.",
        "camera_denied": (
            "Se negó el acceso a la cámara. Permita la cámara para este sitio en los ajustes "
            "del navegador, o tome una foto abajo."
        ),
        "camera_missing": "No se encontró ninguna cámara. Tome o elija una foto abajo.",
        "camera_insecure": (
            "La cámara necesita una conexión segura (https). Tome o elija una foto abajo."
        ),
        "camera_error": "No se pudo encender la cámara. Tome o elija una foto abajo.",
        "photo_heading": "Identificar una foto",
        "photo_label": "Tome o elija una foto de un billete",
        "photo_drop": "También puede soltar una foto aquí.",
        "photo_submit": "Identificar",
        "photo_preview_alt": "La foto que se está identificando",
        "photo_not_image": "Ese archivo no es una imagen. Elija una foto de un billete.",
        "hints_heading": "Consejos",
        "hint_light": "Pruebe con más luz.",
        "hint_steady": "Sostenga el teléfono más quieto.",
        "hint_more": (
            "Muestre más del billete: al menos la mitad, plano, llenando la imagen."
        ),
        "hint_closer": "Acerque el teléfono al billete.",
        "settings_heading": "Ajustes",
        "answers_legend": "Cómo se dan las respuestas",
        "mode_speak": "Decir la respuesta en voz alta",
        "mode_vibrate": "Solo vibrar (privado)",
        "mode_silent": "Solo en pantalla (para lectores de pantalla)",
        "vibrate_help": (
            "Vibración: 1 pulso para $1, 2 para $2, 3 para $5, 4 para $10, 5 para $20, "
            "6 para $50, 7 para $100. Dos vibraciones largas: no identificado. Una vibración "
            "muy corta: escaneando. Una vibración larga: sin conexión."
        ),
        "vibrate_unsupported": (
            "Este navegador no puede vibrar; las respuestas se dicen en voz alta."
        ),
        "error_busy": "El servicio está ocupado. Reintentando…",
        "error_network": "No hay conexión con el servicio. Revise su conexión.",
        "offline": "Sin conexión. Reintentando…",
        "online": "Conectado de nuevo. Escaneando.",
        "no_note": "No se encontró ningún billete.",
        "may_be": "No es seguro. Puede ser {name}.",
        "may_be_two": "No es seguro. Puede ser {a} o {b}.",
        "error_generic": "Algo salió mal: {message}",
        "nojs": (
            "JavaScript está desactivado, así que el escaneo con la cámara no está disponible. "
            "Aún puede identificar una foto."
        ),
        "error_no_file": "No se envió ninguna foto. Elija una foto de un billete.",
        "error_too_large": "Esa foto es demasiado grande (el límite es {mb} MB).",
        "result_title": "Resultado",
        "result_another": "Identificar otra foto",
        "result_back": "Volver al escáner",
        "confidence": "{name}: {pct} %",
        "footer_model": "Modelo {name} {version}",
        "footer_api": "Documentación de la API",
        "footer_privacy": (
            "Donde este navegador puede, los billetes se reconocen en el teléfono y no se "
            "envía ninguna imagen. Si no, las imágenes se envían a este sitio solo para "
            "identificarlas."
        ),
    },
}

# Keys the browser script needs (the rest are rendered by the templates).
SCRIPT_KEYS = (
    "answer_none", "working", "scan_start", "scan_stop", "status_off", "status_starting",
    "status_scanning", "status_paused", "spoken_start", "camera_denied", "camera_missing",
    "camera_insecure", "camera_error", "photo_not_image", "hint_light", "hint_steady",
    "hint_more", "hint_closer", "vibrate_unsupported", "error_busy", "error_network",
    "error_generic", "confidence", "offline", "online", "no_note", "may_be", "may_be_two",
    "scan_again", "local_unavailable",
)


def pick_lang(request: Request) -> tuple[str, bool]:
    """The page language: ``?lang=`` (remembered in a cookie), the cookie, then Accept-Language.

    Returns (lang, remember) where remember says the choice came from ``?lang=`` and should be
    stored in the cookie.
    """
    asked = request.args.get("lang", "").lower()
    if asked in LANGS:
        return asked, True
    cookie = request.cookies.get(COOKIE, "").lower()
    if cookie in LANGS:
        return cookie, False
    return request.accept_languages.best_match(LANGS, default=DEFAULT_LANG), False


def strings(lang: str) -> dict[str, str]:
    return STRINGS.get(lang, STRINGS[DEFAULT_LANG])

