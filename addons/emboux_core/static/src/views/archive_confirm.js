/** @odoo-module **/
// License AGPL-3.0 or later (https://www.gnu.org/licenses/agpl).
// Archiving a domain or a mailbox is a real disable on the mail platform, not
// just hiding a record in Odoo, and deleting one destroys it there with the
// mail it holds: the confirmations say what they do.
import { _t } from "@web/core/l10n/translation";
import { registry } from "@web/core/registry";
import { FormController } from "@web/views/form/form_controller";
import { formView } from "@web/views/form/form_view";
import { ListController } from "@web/views/list/list_controller";
import { listView } from "@web/views/list/list_view";

export function embouxArchiveMessage(resModel, many) {
    if (resModel === "emboux.mailbox") {
        return many
            ? _t("Archiving disables these mailboxes on the mail platform: their logins (IMAP, POP, SMTP) " +
                 "are refused and new mail to them is refused; the mail they hold is kept. " +
                 "Unarchive to enable them again.")
            : _t("Archiving disables this mailbox on the mail platform: its logins (IMAP, POP, SMTP) " +
                 "are refused and new mail to it is refused; the mail it holds is kept. " +
                 "Unarchive to enable it again.");
    }
    if (resModel === "emboux.domain") {
        return many
            ? _t("Archiving suspends these domains on the mail platform: mail to their addresses is refused " +
                 "and their mailboxes' logins are refused; nothing is deleted. Unarchive to resume them.")
            : _t("Archiving suspends this domain on the mail platform: mail to its addresses is refused " +
                 "and its mailboxes' logins are refused; nothing is deleted. Unarchive to resume it.");
    }
    return null;
}

export function embouxDeleteMessage(resModel, many) {
    if (resModel === "emboux.mailbox") {
        return {
            title: many ? _t("Destroy these mailboxes?") : _t("Destroy this mailbox?"),
            body: many
                ? _t("Deleting destroys these mailboxes on the mail platform with all the mail they hold, " +
                     "and the aliases that forward to them. This cannot be undone: archive them instead " +
                     "to only disable them.")
                : _t("Deleting destroys this mailbox on the mail platform with all the mail it holds, " +
                     "and the aliases that forward to it. This cannot be undone: archive it instead " +
                     "to only disable it."),
        };
    }
    if (resModel === "emboux.domain") {
        return {
            title: many ? _t("Destroy these domains?") : _t("Destroy this domain?"),
            body: many
                ? _t("Deleting destroys these domains on the mail platform with all their mailboxes, " +
                     "aliases and the mail they hold. This cannot be undone: archive them instead " +
                     "to only suspend them.")
                : _t("Deleting destroys this domain on the mail platform with all its mailboxes, " +
                     "aliases and the mail they hold. This cannot be undone: archive it instead " +
                     "to only suspend it."),
        };
    }
    return null;
}

export class EmbouxArchiveFormController extends FormController {
    get archiveDialogProps() {
        const props = super.archiveDialogProps;
        const body = embouxArchiveMessage(this.props.resModel, false);
        return body ? { ...props, body } : props;
    }

    get deleteConfirmationDialogProps() {
        const props = super.deleteConfirmationDialogProps;
        const text = embouxDeleteMessage(this.props.resModel, false);
        return text ? { ...props, ...text, confirmLabel: _t("Destroy") } : props;
    }
}

export class EmbouxArchiveListController extends ListController {
    get archiveDialogProps() {
        const props = super.archiveDialogProps;
        const body = embouxArchiveMessage(this.props.resModel, true);
        return body ? { ...props, body } : props;
    }

    get deleteConfirmationDialogProps() {
        const props = super.deleteConfirmationDialogProps;
        const many = this.model.root.isDomainSelected || this.model.root.selection.length > 1;
        const text = embouxDeleteMessage(this.props.resModel, many);
        return text ? { ...props, ...text, confirmLabel: _t("Destroy") } : props;
    }
}

registry.category("views").add("emboux_archive_form", { ...formView, Controller: EmbouxArchiveFormController });
registry.category("views").add("emboux_archive_list", { ...listView, Controller: EmbouxArchiveListController });
